import { randomUUID } from 'node:crypto';
import type { EventRow } from './event-row.js';

/** What every `api_request` event of one route and method shares. */
export interface RequestRoute {
  name: string;
  /** The properties JSON up to the status: `{"method":"GET","route":"/api/x","status":`. */
  propertiesStart: string;
}

/** Who made a tracked request, as its event stores it (the address already anonymised). */
export interface RequestActor {
  userId: string | null;
  sessionId: string;
  ip: string | null;
  userAgent: string | null;
}

/** Numbers per request in RequestEventBlock.values. */
const FIELDS = 5;
/** Roughly what a block holds on the heap per request (its numbers) and per actor: the queue's bound. */
export const REQUEST_EVENT_BYTES = FIELDS * 8;
const ACTOR_BYTES = 200;

/**
 * Automatic `api_request` events of one writer job, column-wise: the
 * distinct routes and actors once, and five numbers per request (actor,
 * route, status, duration, time). Plain data, so that it reaches the
 * writer's thread as one small structured clone.
 *
 * Why not a row object per request: at saturation (2026-12-04, a quiet
 * machine, `GET /api/session`) building each request's row on the event
 * loop and keeping it there until its commit cost the event loop about 5
 * µs a request and V8's GC helpers about 2 more (the rows outlived young
 * collections and were promoted), against about 28 µs for the whole
 * untracked request: the tracked route served 0.84 of the untracked one
 * with the insert itself cut out. The rows are now built where they are
 * inserted (`expandRequestEvents`, on the writer's thread).
 *
 * Event ids: the job's random prefix (a v4 UUID's first 24 characters) and
 * the request's index in the job in the last 12 hex digits, so every
 * expansion of a block names its rows alike (the live stream expands on the
 * main thread what the writer's thread stored). Still a UUID, unique per
 * row; 74 random bits per job instead of 122 per row, which server-made
 * events, never matched against a client's ids, do not need.
 */
export interface RequestEventBlock {
  idPrefix: string;
  routes: RequestRoute[];
  actors: RequestActor[];
  values: number[];
}

/**
 * Builds a block on the event loop: a request's route and actor are looked
 * up, not copied. Its maps stay here; only `block` goes to the thread.
 */
export class RequestEventBlockBuilder {
  readonly block: RequestEventBlock = {
    idPrefix: randomUUID().slice(0, 24),
    routes: [],
    actors: [],
    values: [],
  };
  private readonly routeIndex = new Map<RequestRoute, number>();
  /** The latest actor per session (a session whose address or agent changes gets another). */
  private readonly actorIndex = new Map<string, number>();

  get size(): number {
    return this.block.values.length / FIELDS;
  }

  /** Adds one request; returns about how many bytes the block grew by (see EventWriter). */
  add(
    actor: RequestActor,
    route: RequestRoute,
    status: number,
    durationMs: number,
    at: number,
  ): number {
    let actorIndex = this.actorIndex.get(actor.sessionId);
    let bytes = REQUEST_EVENT_BYTES;
    if (actorIndex === undefined || !sameActor(this.block.actors[actorIndex], actor)) {
      actorIndex = this.block.actors.push(actor) - 1;
      this.actorIndex.set(actor.sessionId, actorIndex);
      bytes += ACTOR_BYTES + (actor.userAgent?.length ?? 0);
    }
    let routeIndex = this.routeIndex.get(route);
    if (routeIndex === undefined) {
      routeIndex = this.block.routes.push(route) - 1;
      this.routeIndex.set(route, routeIndex);
    }
    this.block.values.push(actorIndex, routeIndex, status, durationMs, at);
    return bytes;
  }

  /** Adds the sessions of the block's requests that have no user to `into`. */
  anonymousSessions(into: Set<string>): void {
    for (const actor of this.block.actors) if (actor.userId === null) into.add(actor.sessionId);
  }
}

function sameActor(a: RequestActor, b: RequestActor): boolean {
  return a.userId === b.userId && a.ip === b.ip && a.userAgent === b.userAgent;
}

/** The block's events as the writer inserts them, in request order. */
export function expandRequestEvents(block: RequestEventBlock): EventRow[] {
  const { idPrefix, routes, actors, values } = block;
  const rows: EventRow[] = new Array<EventRow>(values.length / FIELDS);
  for (let i = 0, v = 0; v < values.length; i++, v += FIELDS) {
    const actor = actors[values[v]];
    const route = routes[values[v + 1]];
    const at = values[v + 4];
    rows[i] = {
      eventId: idPrefix + i.toString(16).padStart(12, '0'),
      dedupeKey: null,
      userId: actor.userId,
      sessionId: actor.sessionId,
      type: 'api_request',
      name: route.name,
      path: null,
      // Numbers as JSON.stringify writes them: the status is an integer, the duration finite.
      properties: `${route.propertiesStart}${values[v + 2]},"duration_ms":${values[v + 3]}}`,
      ip: actor.ip,
      userAgent: actor.userAgent,
      occurredAt: at,
      receivedAt: at,
    };
  }
  return rows;
}
