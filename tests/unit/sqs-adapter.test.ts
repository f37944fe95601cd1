import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { sqsAdapter } from '../../lib/aws/sqs.js';

const sqs = mockClient(SQSClient);
beforeEach(() => {
  sqs.reset();
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [{ Id: '1', SenderFault: false, Code: 'InternalError' }] });
});
const message = { id: '0', body: '{}', deduplicationId: 'event-id-1', groupId: 'prod/acme' };

test('on a FIFO queue, the deduplication id is the event id and the group is the customer', async () => {
  const result = await sqsAdapter(new SQSClient({}), 'https://sqs.us-east-1.amazonaws.com/1/completions.fifo').sendBatch([message]);

  expect(sqs).toHaveReceivedCommandWith(SendMessageBatchCommand, {
    Entries: [{ Id: '0', MessageBody: '{}', MessageDeduplicationId: 'event-id-1', MessageGroupId: 'prod/acme' }],
  });
  expect(result.failedIds).toEqual(['1']);
});

test('on a standard queue, no FIFO attributes are sent', async () => {
  await sqsAdapter(new SQSClient({}), 'https://sqs.us-east-1.amazonaws.com/1/completions').sendBatch([message]);

  expect(sqs.commandCalls(SendMessageBatchCommand)[0]?.args[0].input.Entries).toEqual([{ Id: '0', MessageBody: '{}' }]);
});
