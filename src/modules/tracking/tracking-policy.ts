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

  /**
   * Synchronous while every check answers from its cache (the common case:
   * automatic request tracking then queues its event without a promise).
   */
  allows(subject: TrackingSubject): boolean | Promise<boolean> {
    for (let i = 0; i < this.checks.length; i++) {
      const answer = this.checks[i](subject);
      if (answer === false) return false;
      if (answer !== true) return this.finish(answer, subject, i + 1);
    }
    return true;
  }

  private async finish(
    pending: Promise<boolean>,
    subject: TrackingSubject,
    next: number,
  ): Promise<boolean> {
    if (!(await pending)) return false;
    for (const check of this.checks.slice(next)) {
      if (!(await check(subject))) return false;
    }
    return true;
  }
}
