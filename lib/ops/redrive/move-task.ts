/** SQS's own redrive: a message move task (StartMessageMoveTask), which moves everything at a given rate. */
import { ListMessageMoveTasksCommand, type SQSClient, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';
import type { RedriveQueues } from './queues.js';

/** The result of a move task (StartMessageMoveTask), as ListMessageMoveTasks reports it. */
export interface MoveTaskReport {
  taskHandle: string;
  status: string;
  moved: number;
  toMove?: number;
  failureReason?: string;
}

/**
 * True when an error says the endpoint does not implement the call (moto answers HTTP 500 to StartMessageMoveTask),
 * as opposed to a refusal (access denied, a task already running, not a DLQ) that must be reported.
 */
export function isUnsupportedOperation(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === 500 || status === 501) return true;
  return /UnsupportedOperation|InvalidAction|UnknownOperation|NotImplemented|not (yet )?implemented/i.test(
    `${error.name} ${error.message}`,
  );
}

/**
 * Starts SQS's own move task from the DLQ to the source queue. Returns its handle, or `unsupported` (with the
 * error) when the endpoint does not implement it; throws any other refusal. The task moves messages as they are:
 * it adds no message attribute (see FIRST_SENT_AT_ATTRIBUTE in messages.ts).
 */
export async function startMoveTask(
  sqs: SQSClient,
  queues: Pick<RedriveQueues, 'dlqArn' | 'sourceArn'>,
  ratePerSecond: number,
): Promise<{ taskHandle: string } | { unsupported: string }> {
  try {
    const { TaskHandle } = await sqs.send(
      new StartMessageMoveTaskCommand({
        SourceArn: queues.dlqArn,
        DestinationArn: queues.sourceArn,
        // SQS accepts 1 to 500.
        MaxNumberOfMessagesPerSecond: Math.min(500, Math.max(1, Math.round(ratePerSecond))),
      }),
    );
    if (!TaskHandle) throw new Error('StartMessageMoveTask answered no TaskHandle');
    return { taskHandle: TaskHandle };
  } catch (error) {
    if (!isUnsupportedOperation(error)) throw error;
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    return { unsupported: `StartMessageMoveTask is not available on this endpoint (${status ? `HTTP ${status}` : (error as Error).name})` };
  }
}

/** Polls ListMessageMoveTasks until the task is no longer running (or `signal` aborts); returns its last state. */
export async function waitForMoveTask(
  sqs: SQSClient,
  dlqArn: string,
  taskHandle: string,
  options: {
    pollMs?: number;
    sleep?: (ms: number) => Promise<void>;
    onProgress?: (task: MoveTaskReport) => void;
    signal?: AbortSignal;
  } = {},
): Promise<MoveTaskReport> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (;;) {
    const { Results = [] } = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 10 }));
    const task = Results.find((t) => t.TaskHandle === taskHandle) ?? Results[0];
    const report: MoveTaskReport = {
      taskHandle,
      status: task?.Status ?? 'UNKNOWN',
      moved: task?.ApproximateNumberOfMessagesMoved ?? 0,
      toMove: task?.ApproximateNumberOfMessagesToMove,
      failureReason: task?.FailureReason,
    };
    options.onProgress?.(report);
    if (report.status !== 'RUNNING' || options.signal?.aborted) return report;
    await sleep(options.pollMs ?? 2000);
  }
}
