import { Injectable } from '@nestjs/common';

export interface TrackingSubject {
  userId: string | null;
  sessionId: string | null;
}

/** Answers whether analytics events of this subject may be stored. Must be cheap (cache). */
export type TrackingCheck = (subject: TrackingSubject) => boolean | Promise<boolean>;

/**
 * The single place that decides, per event, whether it is stored. Other
 * modules plug their rules in (consent ledger, privacy settings) with
 * `register`, so tracking does not depend on them. All checks must allow.
 */
@Injectable()
export class TrackingPolicy {
  private readonly checks: TrackingCheck[] = [];

  register(check: TrackingCheck): void {
    this.checks.push(check);
  }

  async allows(subject: TrackingSubject): Promise<boolean> {
    for (const check of this.checks) {
      if (!(await check(subject))) return false;
    }
    return true;
  }
}
