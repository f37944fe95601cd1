import type { OutgoingMessage } from '../aws/sqs.js';
import { deterministicId } from '../ids.js';
import type { Buyer } from './session.js';

/**
 * The roll request's producer id: the same record and key being replaced give the same id, so two presses, two tabs
 * or a press after a lost answer ask for one roll (the provision function finishes a roll once per id; a FIFO queue
 * also drops the repeat within its window).
 */
export const rollEventId = (recordKey: string, apiKeyId: string): string => `roll-${deterministicId('key-page-roll', recordKey, apiKeyId)}`;

/**
 * The roll request for the provision function (issue 21's contract): `{"action":"roll", customerId, productCode,
 * eventId, occurredAt}`; `graceSeconds` left out (the deployment's default). The page creates, changes and deletes no
 * key itself. Pure.
 */
export function rollMessage(buyer: Buyer, recordKey: string, apiKeyId: string, now: Date): OutgoingMessage {
  const eventId = rollEventId(recordKey, apiKeyId);
  const body = {
    action: 'roll',
    customerId: buyer.customerId,
    ...(buyer.productCode !== undefined && { productCode: buyer.productCode }),
    eventId,
    occurredAt: now.toISOString(),
  };
  return {
    id: '0',
    body: JSON.stringify(body),
    deduplicationId: eventId,
    // The hook's group for the same buyer and product (lib/registration/buyer.ts): a buyer's requests stay in order.
    groupId: deterministicId('signup-group', buyer.customerId, buyer.productCode ?? ''),
  };
}
