import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { licenseEvent as marketplaceLicenseEvent } from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';

// Concurrent agreements deliver the license events of one buyer close together: two of them processed at the same
// moment (one batch, records in parallel) must both be recorded. With the record in the secret and no conditional
// write, both read the same licenses and the later write forgot the other license (issue 23, hazard 1).

const PRODUCT = 'prod4k2j9x8l7';
const license = (account: string, n: number) => `arn:aws:license-manager::386209384616:license:l-${account}-${n}`;

/** A Marketplace EventBridge license event, as AWS documents them. */
const licenseEvent = (kind: 'Updated' | 'Deprovisioned', account: string, n: number, time: string) =>
  marketplaceLicenseEvent(kind, {
    productCode: PRODUCT,
    accountId: account,
    time,
    licenseArn: license(account, n),
    id: `evt-${kind}-${account}-${n}-${time}`,
  });

type Kind = 'Updated' | 'Deprovisioned';
interface Case {
  /** Events applied one after another first. */
  before: Array<[Kind, number]>;
  /** The two events delivered at the same moment. */
  together: [[Kind, number], [Kind, number]];
  licenses: Record<number, 'active' | 'deprovisioned'>;
}

// Every pair of events of two licenses, from the start state in which each event changes something.
const CASES: Record<string, Case> = {
  'Updated 1 ∥ Updated 2, from none': {
    before: [],
    together: [
      ['Updated', 1],
      ['Updated', 2],
    ],
    licenses: { 1: 'active', 2: 'active' },
  },
  'Deprovisioned 1 ∥ Deprovisioned 2, from both active': {
    before: [
      ['Updated', 1],
      ['Updated', 2],
    ],
    together: [
      ['Deprovisioned', 1],
      ['Deprovisioned', 2],
    ],
    licenses: { 1: 'deprovisioned', 2: 'deprovisioned' },
  },
  'Deprovisioned 1 ∥ Updated 2, from 1 active': {
    before: [['Updated', 1]],
    together: [
      ['Deprovisioned', 1],
      ['Updated', 2],
    ],
    licenses: { 1: 'deprovisioned', 2: 'active' },
  },
  'Updated 1 ∥ Deprovisioned 2, from 2 active': {
    before: [['Updated', 2]],
    together: [
      ['Updated', 1],
      ['Deprovisioned', 2],
    ],
    licenses: { 1: 'active', 2: 'deprovisioned' },
  },
};

let pipeline: Pipeline;
beforeAll(async () => {
  pipeline = await startPipeline({ visibilityTimeoutSeconds: 2, maxReceiveCount: 5 });
});
afterAll(() => pipeline.close());

const ROUNDS = 3;

test.each(Object.entries(CASES).map(([name, c], i) => [name, c, i] as const))(
  '%s: both licenses recorded, the key enabled iff one is active',
  async (_name, c, i) => {
    // A buyer account (12 digits) per case and round.
    const accounts = Array.from({ length: ROUNDS }, (_, round) => String(731245090000 + i * 10 + round));
    // Times: the events applied first are older than the pair; the pair's two events are of different licenses.
    const at = (step: number) => `2026-07-0${step + 1}T00:00:00Z`;
    for (const account of accounts) {
      for (const [step, [kind, n]] of c.before.entries()) {
        await pipeline.send(licenseEvent(kind, account, n, at(step)));
        expect((await pipeline.drain()).drained).toBe(true);
      }
    }
    await pipeline.clearCompletions();

    // Each round: one buyer's two events in one batch, whose records the function processes in parallel.
    await pipeline.send(...accounts.flatMap((account) => c.together.map(([kind, n]) => licenseEvent(kind, account, n, at(5)))));
    const run = await pipeline.drain({ batchSize: 10 });

    expect(run.drained).toBe(true);
    expect(await pipeline.deadLetterIds()).toEqual([]);
    const keys = await pipeline.apiKeys();
    const shouldBeEnabled = Object.values(c.licenses).includes('active');
    for (const account of accounts) {
      const record = await pipeline.secretJson(`keyprov/test/${PRODUCT}/${account}/api-key`);
      const recorded = record.licenses as Record<string, { status: string }>;
      expect({ account, licenses: Object.fromEntries(Object.entries(recorded).map(([arn, state]) => [arn, state.status])) }).toEqual({
        account,
        licenses: Object.fromEntries(Object.entries(c.licenses).map(([n, status]) => [license(account, Number(n)), status])),
      });
      const own = keys.filter((k) => k.customerId === account);
      expect({ account, keys: own.length, enabled: own[0]?.enabled }).toEqual({ account, keys: 1, enabled: shouldBeEnabled });
    }
    const events: CompletionEvent[] = await pipeline.completionEvents();
    expect(events.filter((e) => e.type === 'api-key.provisioning-failed')).toEqual([]);
  },
);
