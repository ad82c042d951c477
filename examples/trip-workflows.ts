/**
 * Your own workflows file: the upload workflows re-exported next to a workflow of your own built
 * on the saga engine. The worker bundles this file (`workflowsPath`), so it must stay sandbox-safe:
 * only `upload-saga/workflows`, `upload-saga/saga` and `@temporalio/workflow`, never Node built-ins.
 */
import { defineSaga, Saga } from 'upload-saga/saga';
import type { TripActivities } from './trip-activities';

export * from 'upload-saga/workflows';

const once = { maximumAttempts: 1 } as const;
const timeouts = { startToClose: '10s' } as const;

/** Reserve a seat, then charge the card; when the charge fails, the seat is released. */
export const tripSteps = defineSaga<TripActivities>()({
  reserve: {
    action: { activity: 'reserveSeat', retry: once, timeouts },
    compensation: { activity: 'releaseSeat', retry: { maximumAttempts: 3 }, timeouts },
  },
  charge: { action: { activity: 'chargeCard', retry: once, timeouts } },
});

/** Books a trip as a saga; throws (after compensating) when a step fails. */
export async function bookTrip(input: { tripId: string; amount: number }): Promise<string> {
  const saga = new Saga<TripActivities, typeof tripSteps>(tripSteps);
  return saga.execute(async () => {
    const seat = await saga.run('reserve', [{ tripId: input.tripId, seats: 1 }], {
      compensateWith: (outcome) => [{ tripId: input.tripId, seat: outcome.status === 'completed' ? outcome.result : undefined }],
    });
    await saga.run('charge', [{ tripId: input.tripId, amount: input.amount }], {});
    return seat;
  });
}
