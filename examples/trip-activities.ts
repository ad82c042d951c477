/**
 * The activities of the trip saga (see trip-workflows.ts): stand-ins that only record what ran.
 * `chargeCard` refuses every card, so the saga compensates the seat it reserved.
 */
import { ApplicationFailure } from '@temporalio/common';

/** What ran, in order: the example prints it. */
export const journal: string[] = [];

export const tripActivities = {
  async reserveSeat(trip: { tripId: string; seats: number }): Promise<string> {
    journal.push(`reserved ${trip.seats} seat(s) for ${trip.tripId}`);
    return `seat-${trip.tripId}`;
  },
  async releaseSeat(reservation: { tripId: string; seat: string | undefined }): Promise<void> {
    journal.push(`released ${reservation.seat ?? 'the seat (if any)'} of ${reservation.tripId}`);
  },
  async chargeCard(payment: { tripId: string; amount: number }): Promise<void> {
    journal.push(`charging ${payment.amount} for ${payment.tripId}: declined`);
    throw ApplicationFailure.nonRetryable('card declined', 'CardDeclined');
  },
};

export type TripActivities = typeof tripActivities;
