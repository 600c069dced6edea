/** Application events the session module emits after commit (tracking records them). */
export const SESSION_LOGIN = 'session.login';
export const SESSION_LOGOUT = 'session.logout';

export class SessionLoginEvent {
  constructor(
    readonly sessionId: string,
    readonly userId: string,
    /** True when an anonymous session became the user's (its events are now theirs). */
    readonly upgradedFromAnonymous: boolean,
    readonly ip: string | null,
    readonly userAgent: string | null,
    readonly at: number,
  ) {}
}

export class SessionLogoutEvent {
  constructor(
    readonly sessionId: string,
    readonly userId: string | null,
    readonly ip: string | null,
    readonly userAgent: string | null,
    readonly at: number,
  ) {}
}
