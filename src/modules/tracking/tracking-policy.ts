import { Injectable } from '@nestjs/common';

export interface TrackingSubject {
  userId: string | null;
  sessionId: string | null;
}

/** Answers whether analytics events of this subject may be stored. Must be cheap (cache). */
export type TrackingCheck = (subject: TrackingSubject) => boolean | Promise<boolean>;

/**
 * For a user whose events may be stored now: since when without a break
 * (epoch ms; 0: always). Client batches carry past times, and an event from
 * while analytics was withdrawn must not be stored once it is allowed again.
 */
export type AllowedSince = (userId: string) => Promise<number>;

/**
 * The single place that decides, per event, whether it is stored. Other
 * modules plug their rules in (consent ledger, privacy settings) with
 * `register`, so tracking does not depend on them. All checks must allow.
 */
@Injectable()
export class TrackingPolicy {
  private readonly checks: TrackingCheck[] = [];
  private readonly since: AllowedSince[] = [];

  /** `allowedSince`: the rule's answer for past events (see AllowedSince); none: always. */
  register(check: TrackingCheck, allowedSince?: AllowedSince): void {
    this.checks.push(check);
    if (allowedSince) this.since.push(allowedSince);
  }

  /** The latest of the rules' AllowedSince answers: events before it are not stored. */
  async allowedSince(userId: string): Promise<number> {
    let since = 0;
    for (const rule of this.since) since = Math.max(since, await rule(userId));
    return since;
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
