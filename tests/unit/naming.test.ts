import { apiKeyName, MAX_TAGS, mergeTags, NO_PRODUCT, secretName, tagProblem } from '../../lib/customer-key/naming.js';
import { RejectedError } from '../../lib/errors.js';

/** `count` valid tags `k0`…`k{count-1}`. */
const manyTags = (count: number): Record<string, string> => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, `v${i}`]));

describe('apiKeyName', () => {
  test('is <prefix><product>/<customerId>', () => {
    expect(apiKeyName('keyprov/prod/', 'cust-1', 'prod4k2j9x8l7')).toBe('keyprov/prod/prod4k2j9x8l7/cust-1');
  });

  test("uses '_' when there is no product", () => {
    expect(NO_PRODUCT).toBe('_');
    expect(apiKeyName('keyprov/prod/', 'cust-1')).toBe('keyprov/prod/_/cust-1');
    expect(apiKeyName('keyprov/prod/', 'cust-1', undefined)).toBe('keyprov/prod/_/cust-1');
  });

  test('is deterministic', () => {
    expect(apiKeyName('p/', 'cust-1', 'prodA')).toBe(apiKeyName('p/', 'cust-1', 'prodA'));
  });

  test.each([
    ['another customer', ['p/', 'cust-2', 'prodA']],
    ['another product', ['p/', 'cust-1', 'prodB']],
    ['no product', ['p/', 'cust-1', undefined]],
    ['another prefix', ['q/', 'cust-1', 'prodA']],
  ] as const)('differs for %s', (_what, [prefix, customer, product]) => {
    expect(apiKeyName(prefix, customer, product)).not.toBe(apiKeyName('p/', 'cust-1', 'prodA'));
  });
});

describe('secretName', () => {
  test('is the key name plus /api-key', () => {
    expect(secretName('keyprov/prod/', 'cust-1', 'prod4k2j9x8l7')).toBe('keyprov/prod/prod4k2j9x8l7/cust-1/api-key');
  });

  test("uses '_' when there is no product", () => {
    expect(secretName('keyprov/prod/', 'cust-1')).toBe('keyprov/prod/_/cust-1/api-key');
  });

  test('is deterministic and derived from apiKeyName', () => {
    expect(secretName('p/', 'cust-1', 'prodA')).toBe(secretName('p/', 'cust-1', 'prodA'));
    expect(secretName('p/', 'cust-1', 'prodA')).toBe(`${apiKeyName('p/', 'cust-1', 'prodA')}/api-key`);
  });

  test('never ends in a hyphen and six characters (the Secrets Manager ARN suffix shape)', () => {
    expect(secretName('p/', 'cust-abcdef')).not.toMatch(/-[A-Za-z0-9]{6}$/);
  });
});

describe('tagProblem', () => {
  test('accepts no tags', () => {
    expect(tagProblem({})).toBeUndefined();
  });

  test.each([
    ['letters and digits', { Team42: 'Growth2026' }],
    ['every allowed symbol', { 'a+-=._:/z': 'a+-=._:/z' }],
    ['an empty value', { team: '' }],
    ['a value starting with aws:', { origin: 'aws:marketplace' }],
    ['a key containing aws: later on', { 'my-aws:tag': 'x' }],
  ])('accepts %s', (_what, tags) => {
    expect(tagProblem(tags)).toBeUndefined();
  });

  test.each([
    ['a space', 'cost center'],
    ['a comma', 'a,b'],
    ['an @', 'owner@example'],
    ['a non-ASCII letter', 'équipe'],
  ])('rejects a key with %s', (_what, key) => {
    expect(tagProblem({ [key]: 'x' })).toMatch(/tag key .* has characters outside/);
  });

  test.each([
    ['a space', 'growth team'],
    ['a comma', 'a,b'],
    ['a newline', 'a\nb'],
  ])('rejects a value with %s, naming the key', (_what, value) => {
    expect(tagProblem({ team: value })).toMatch(/tag "team" has a value with characters outside/);
  });

  test('accepts a key of 128 characters', () => {
    expect(tagProblem({ ['k'.repeat(128)]: 'x' })).toBeUndefined();
  });

  test('rejects a key of 129 characters', () => {
    expect(tagProblem({ ['k'.repeat(129)]: 'x' })).toMatch(/must be 1 to 128 characters/);
  });

  test('rejects an empty key', () => {
    expect(tagProblem({ '': 'x' })).toMatch(/must be 1 to 128 characters/);
  });

  test.each(['aws:team', 'AWS:team', 'Aws:team'])('rejects the reserved prefix in %s', (key) => {
    expect(tagProblem({ [key]: 'x' })).toMatch(/must not start with "aws:"/);
  });

  test('accepts a value of 256 characters', () => {
    expect(tagProblem({ team: 'v'.repeat(256) })).toBeUndefined();
  });

  test('rejects a value of 257 characters without echoing it', () => {
    const problem = tagProblem({ team: 'v'.repeat(257) });
    expect(problem).toMatch(/tag "team" has a value longer than 256 characters/);
    expect(problem).not.toContain('v'.repeat(20));
  });

  test('rejects a non-string value', () => {
    expect(tagProblem({ team: 7 as unknown as string })).toMatch(/tag "team" must have a string value/);
  });

  test('never echoes a value with bad characters', () => {
    expect(tagProblem({ team: 'SECRET VALUE' })).not.toContain('SECRET');
  });

  test(`accepts ${MAX_TAGS} tags`, () => {
    expect(MAX_TAGS).toBe(50);
    expect(tagProblem(manyTags(50))).toBeUndefined();
  });

  test('rejects 51 tags', () => {
    expect(tagProblem(manyTags(51))).toBe('51 tags given, at most 50 are allowed');
  });
});

describe('mergeTags', () => {
  test('returns the defaults when the event has no tags', () => {
    expect(mergeTags({ stage: 'prod' }, undefined)).toEqual({ stage: 'prod' });
  });

  test('adds the event tags to the defaults', () => {
    expect(mergeTags({ stage: 'prod' }, { team: 'growth' })).toEqual({ stage: 'prod', team: 'growth' });
  });

  test('event tags override defaults', () => {
    expect(mergeTags({ stage: 'prod', team: 'platform' }, { team: 'growth' })).toEqual({ stage: 'prod', team: 'growth' });
  });

  test('does not modify its arguments', () => {
    const defaults = { stage: 'prod' };
    const own = { stage: 'dev' };
    mergeTags(defaults, own);
    expect(defaults).toEqual({ stage: 'prod' });
    expect(own).toEqual({ stage: 'dev' });
  });

  test.each<[string, Record<string, string>]>([
    ['a bad key', { 'cost center': 'x' }],
    ['a reserved key', { 'aws:team': 'x' }],
    ['a long value', { team: 'v'.repeat(257) }],
  ])('throws RejectedError invalid-tags for %s', (_what, own) => {
    expect(() => mergeTags({ stage: 'prod' }, own)).toThrow(RejectedError);
    expect(() => mergeTags({ stage: 'prod' }, own)).toThrow(expect.objectContaining({ reason: 'invalid-tags' }));
  });

  test('counts the merged tags against the limit', () => {
    expect(mergeTags(manyTags(25), Object.fromEntries(Object.entries(manyTags(50)).slice(25)))).toEqual(manyTags(50));
    expect(() => mergeTags(manyTags(25), { ...Object.fromEntries(Object.entries(manyTags(50)).slice(25)), extra: 'x' })).toThrow(
      /51 tags given/,
    );
  });

  test('overlapping keys count once', () => {
    expect(Object.keys(mergeTags(manyTags(50), manyTags(50)))).toHaveLength(50);
  });
});
