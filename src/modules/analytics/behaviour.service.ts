import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../common/config/config.js';
import { AnalyticsReader } from './analytics-reader.js';
import {
  decodeCursor,
  DEFAULT_PAGE_SIZE,
  encodeCursor,
} from '../../common/pagination/pagination.js';
import { toIso } from '../../common/time.js';
import { AnalyticsService } from './analytics.service.js';
import { Range } from './time-buckets.js';
import {
  ACTOR,
  ALL_EVENTS,
  apiFilter,
  collapseRuns,
  compareBytes,
  IN_SESSION,
  inPart,
  inRange,
  num,
  Params,
  Part,
  PATH_ITEM,
  pathElements,
  ratio,
  shareOf,
  sessionPaths,
  sessionsInRange,
} from './sql.js';
import { COUNT_COLUMN } from '../tracking/session-summaries.js';
import { normalizePagePath } from '../tracking/page-path.js';

const SEPARATOR = ' > ';
export const EXIT_ITEM = '$exit';

/**
 * `items`: the path item of each event in the range, api_request included,
 * with session_id, occurred_at, id (sessions of `part`). Without api_request
 * items, paths come from the rollup instead (see sessionPaths).
 */
function pathItems(p: Params, range: Range, part: Part): string {
  return `items AS (
      SELECT session_id, occurred_at, id, ${PATH_ITEM} AS item FROM events
      WHERE session_id IS NOT NULL AND ${inRange(p, range.from, range.to)}
        AND ${inPart('session_id', part)}
    )`;
}

/**
 * CTE `name(next)`: what follows each occurrence of `item` (the parameter
 * placeholder) among the items of `source` in session order, NULL after a
 * session's last. The last event of each run of equal items stands for the
 * collapsed item, and the event after it holds the next item, so `source`
 * needs no collapsing of its own.
 */
function followers(name: string, source: string, item: string): string {
  return `${name} AS (
      SELECT next FROM (SELECT item, LEAD(item) OVER (${IN_SESSION}) AS next FROM ${source}) f
      WHERE item = ${item} AND (next IS NULL OR next <> item)
    )`;
}

export interface JourneyStep {
  event_type: string;
  name: string | null;
  page: string | null;
  event_data: Record<string, unknown> | null;
  timestamp: string;
}

/** Journeys, behaviour patterns, transitions and feature adoption. */
@Injectable()
export class BehaviourService {
  constructor(
    private readonly database: AnalyticsReader,
    private readonly metrics: AnalyticsService,
    private readonly config: AppConfig,
  ) {}

  /**
   * A user's events (one session's, or in a range), the latest `limit` of
   * them in time order (newest last); `next_cursor` pages to older ones.
   */
  async journey(
    userId: string,
    filter: {
      sessionId?: string;
      range?: Range;
      includeApi: boolean;
      limit?: number;
      cursor?: string;
    },
  ) {
    const limit = filter.limit ?? DEFAULT_PAGE_SIZE;
    const p = new Params();
    const where = [`user_id = ${p.add(userId)}`, apiFilter(filter.includeApi)];
    if (filter.sessionId) where.push(`session_id = ${p.add(filter.sessionId)}`);
    if (filter.range) where.push(inRange(p, filter.range.from, filter.range.to));
    if (filter.cursor) {
      const [at, id] = decodeCursor(filter.cursor, ['time', 'id']);
      where.push(
        `(occurred_at < ${p.add(at)} OR (occurred_at = ${p.add(at)} AND id < ${p.add(id)}))`,
      );
    }
    const rows = await this.database.query<{
      id: number;
      type: string;
      name: string | null;
      path: string | null;
      properties: string | null;
      occurred_at: number;
    }>(
      `SELECT id, type, name, path, properties, occurred_at FROM events WHERE ${where.join(' AND ')}
       ORDER BY occurred_at DESC, id DESC LIMIT ${p.add(limit + 1)}`,
      p.values,
    );
    const hasMore = rows.length > limit;
    const page = rows.slice(0, limit).reverse();
    const oldest = page[0];
    const journey: JourneyStep[] = page.map((r) => ({
      event_type: r.type,
      name: r.name,
      page: r.path,
      event_data: r.properties ? (JSON.parse(r.properties) as Record<string, unknown>) : null,
      timestamp: toIso(Number(r.occurred_at)),
    }));
    return {
      journey,
      steps: journey.length,
      next_cursor:
        hasMore && oldest ? encodeCursor([Number(oldest.occurred_at), Number(oldest.id)]) : null,
    };
  }

  /** Contiguous n-grams of path items per session: count, sessions, support. */
  async patterns(range: Range, n: number, limit: number, includeApi: boolean) {
    const order = `COUNT(DISTINCT session_id) DESC, seq${this.database.byteOrder} ASC`;
    // Sessions are split into parts run side by side. A gram's counts add up across parts
    // only in full, so with several parts each returns all its grams and the top `limit`
    // are picked here; a single part lets the database pick them.
    const [parts, total] = await Promise.all([
      this.database.queryParts<{ seq: string; count: number; sessions: number }>((part) => {
        const p = new Params();
        const topOnly = part.count === 1 ? `ORDER BY ${order} LIMIT ${limit}` : '';
        const sql = `WITH ${this.gramsSql(p, range, n, includeApi, part)}
         SELECT seq, COUNT(*) AS count, COUNT(DISTINCT session_id) AS sessions
         FROM grams WHERE seq IS NOT NULL GROUP BY seq ${topOnly}`;
        return { sql, params: p.values };
      }),
      this.sessionsWithEvents(range, includeApi),
    ]);
    const grams = new Map<string, { seq: string; count: number; sessions: number }>();
    for (const r of parts.flat()) {
      const gram = grams.get(r.seq) ?? { seq: r.seq, count: 0, sessions: 0 };
      gram.count += num(r.count);
      gram.sessions += num(r.sessions);
      grams.set(r.seq, gram);
    }
    // Most sessions first, then the sequence in byte order (as `order` sorts in SQL).
    const top = [...grams.values()]
      .sort((a, b) => b.sessions - a.sessions || compareBytes(a.seq, b.seq))
      .slice(0, limit);
    return {
      n,
      total_sessions: total,
      items: top.map((r) => ({
        sequence: r.seq.split(SEPARATOR),
        count: r.count,
        sessions: r.sessions,
        support: shareOf(r.sessions, total),
      })),
    };
  }

  /**
   * CTEs ending in `grams(session_id, seq)`: each item of each path with the
   * n-1 that follow it, joined by SEPARATOR; NULL when the path ends first.
   * Paths come from the rollup (see sessionPaths); with api_request items
   * (not in the rollup's paths), from the events.
   */
  private gramsSql(p: Params, range: Range, n: number, includeApi: boolean, part: Part): string {
    const joined = (items: string[]) => items.join(` || '${SEPARATOR}' || `);
    const following = (at: (k: number) => string) =>
      joined(Array.from({ length: n }, (_, k) => at(k)));
    const lead = (k: number) => (k === 0 ? 'item' : `LEAD(item, ${k}) OVER (${IN_SESSION})`);
    if (includeApi) {
      return `${pathItems(p, range, part)},
         collapsed AS (${collapseRuns('items')}),
         grams AS (SELECT session_id, ${following(lead)} AS seq FROM collapsed)`;
    }
    const paths = pathElements(this.database.isPostgres);
    return `${sessionPaths(p, range, part)},
       grams AS (
         SELECT s.session_id, ${following(paths.at)} AS seq FROM ${paths.from}
         UNION ALL
         SELECT session_id, ${following(lead)} FROM edge_paths
       )`;
  }

  /** Sessions with an event in the range (api_request counted only with `includeApi`), from the rollup. */
  private async sessionsWithEvents(range: Range, includeApi: boolean): Promise<number> {
    const p = new Params();
    const events = includeApi ? ALL_EVENTS : `${ALL_EVENTS} - ${COUNT_COLUMN.api_request}`;
    const [row] = await this.database.query<{ n: number }>(
      `WITH ${sessionsInRange(p, range)} SELECT COUNT(*) AS n FROM per_session WHERE ${events} > 0`,
      p.values,
    );
    return num(row?.n);
  }

  /**
   * P(next = b | current = item), with `$exit` after a session's last item.
   * Paths from the rollup (see sessionPaths); with api_request items, from
   * the events.
   */
  /**
   * `item` is matched as paths are stored: a page path or URL is normalised
   * first (`/café/` is the stored `/caf%C3%A9`); event types and
   * `action:<name>` items are taken as they are.
   */
  async transitions(range: Range, requested: string, includeApi: boolean) {
    const item = /^(\/|https?:\/\/)/i.test(requested)
      ? (normalizePagePath(requested) ?? requested)
      : requested;
    // Sessions are split into parts run side by side; the parts' counts add up.
    const parts = await this.database.queryParts<{ next: string | null; n: number }>((part) => {
      const p = new Params();
      const followed = includeApi
        ? `${pathItems(p, range, part)}, ${followers('followed', 'items', p.add(item))}`
        : this.followedInPaths(p, range, item, part);
      const sql = `WITH ${followed} SELECT next, COUNT(*) AS n FROM followed GROUP BY next`;
      return { sql, params: p.values };
    });
    const counts = new Map<string, number>();
    for (const r of parts.flat()) {
      const next = r.next ?? EXIT_ITEM;
      counts.set(next, (counts.get(next) ?? 0) + num(r.n));
    }
    const total = [...counts.values()].reduce((sum, n) => sum + n, 0);
    const items = [...counts]
      .map(([next, count]) => ({ next, count, probability: ratio(count, total) }))
      .sort((a, b) => b.count - a.count || compareBytes(a.next, b.next));
    return { item, total, items };
  }

  /**
   * CTEs ending in `followed(next)`: what follows each occurrence of `item`
   * in the paths, read from the rollup for whole sessions (a collapsed path:
   * the next element) and from the events of the others (see followers).
   */
  private followedInPaths(p: Params, range: Range, item: string, part: Part): string {
    const paths = pathElements(this.database.isPostgres);
    return `${sessionPaths(p, range, part)},
       ${followers('edge_followed', 'edge_paths', p.add(item))},
       followed AS (
         SELECT ${paths.at(1)} AS next FROM ${paths.from} WHERE ${paths.at(0)} = ${p.add(item)}
         UNION ALL
         SELECT next FROM edge_followed
       )`;
  }

  /**
   * Feature adoption. A feature is a set of action names: configured in
   * FEATURES, or else the actions named exactly like it or prefixed `<name>.`.
   */
  async features(range: Range, names: string[], includeApi = true) {
    // The active count and every feature's figures are independent: on SQLite they run
    // side by side in the reader's two workers.
    const [active, figures] = await Promise.all([
      this.metrics.activeActors(range, includeApi),
      Promise.all(names.map((feature) => this.featureFigures(range, feature))),
    ]);
    const results = figures.map((figure) => ({
      feature: figure.feature,
      actions: figure.actions,
      users: figure.users,
      adoption_rate: shareOf(figure.users, active),
      events: figure.events,
      first_time_users: figure.firstTime,
    }));
    return { active_users: active, items: results };
  }

  /** Users, events (in range) and first-time users (first use ever in range) of one feature. */
  private async featureFigures(range: Range, feature: string) {
    // Own properties only: `constructor` or `toString` name actions, not Object's members.
    const configured = this.config.analytics.features;
    const actions = Object.hasOwn(configured, feature) ? configured[feature] : undefined;
    const p = new Params();
    // Placeholders are numbered in text order: the range comes first in the SQL below.
    const withinRange = inRange(p, range.from, range.to);
    // `<name>.*` as a byte range ('/' follows '.'): case-sensitive on both databases,
    // and an index range on (type, name, occurred_at), where LIKE would scan.
    const order = this.database.byteOrder;
    const match = actions
      ? `name IN (${actions.map((a) => p.add(a)).join(', ')})`
      : `(name = ${p.add(feature)} OR (name >= ${p.add(`${feature}.`)}${order} AND name < ${p.add(`${feature}/`)}${order}))`;
    // One pass over the feature's actions of all time, grouped by actor: first use ever,
    // and how many of the actor's actions fall in the range.
    const [row] = await this.database.query<{ users: number; events: number; first_time: number }>(
      `WITH per_actor AS (
         SELECT ${ACTOR} AS actor, MIN(occurred_at) AS first_at,
           SUM(CASE WHEN ${withinRange} THEN 1 ELSE 0 END) AS in_range
         FROM events WHERE type = 'action' AND ${match} GROUP BY 1
       )
       SELECT
         SUM(CASE WHEN in_range > 0 THEN 1 ELSE 0 END) AS users,
         SUM(in_range) AS events,
         SUM(CASE WHEN first_at >= ${p.add(range.from)} AND first_at < ${p.add(range.to)} THEN 1 ELSE 0 END) AS first_time
       FROM per_actor`,
      p.values,
    );
    return {
      feature,
      actions: actions ?? null,
      users: num(row?.users),
      events: num(row?.events),
      firstTime: num(row?.first_time),
    };
  }
}
