/** Emitted (and awaited) after a user was disabled; the session module revokes their sessions. */
export const USER_DISABLED = 'user.disabled';

export class UserDisabledEvent {
  constructor(
    readonly userId: string,
    readonly actorUserId: string,
  ) {}
}
