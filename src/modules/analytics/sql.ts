import type { EventMatcherDto } from './dto/analytics.dto.js';
import { normalizePagePath } from '../tracking/page-path.js';

/** Collects positional parameters while SQL text is built left to right. */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return '?';
  }
}

/**
 * Who an event belongs to: the user, or for a session that never logged in,
 * the session itself (it is a distinct visitor until identity stitching
 * gives its events a user id).
 */
export const ACTOR = "COALESCE(user_id, 's:' || session_id)";

/**
 * COUNT(DISTINCT actor) without building the actor string per row: user ids
 * and never-identified sessions are disjoint sets, so their distinct counts add up.
 */
export const COUNT_ACTORS =
  'COUNT(DISTINCT user_id) + COUNT(DISTINCT CASE WHEN user_id IS NULL THEN session_id END)';

/** Events the server records by itself; `include_api=false` leaves out api_request. */
export const SYSTEM_TYPES = ['api_request', 'login', 'logout'];

export function inRange(p: Params, from: number, to: number, alias = ''): string {
  return `${alias}occurred_at >= ${p.add(from)} AND ${alias}occurred_at < ${p.add(to)}`;
}

export function apiFilter(includeApi: boolean, alias = ''): string {
  return includeApi ? '1 = 1' : `${alias}type <> 'api_request'`;
}

/** `column = value`, or LIKE when the pattern has `*` at either end. */
function matchText(column: string, pattern: string, p: Params): string {
  if (!pattern.startsWith('*') && !pattern.endsWith('*')) return `${column} = ${p.add(pattern)}`;
  const core = pattern
    .replace(/^\*/, '')
    .replace(/\*$/, '')
    .replace(/[\\%_]/g, (c) => `\\${c}`);
  const like = `${pattern.startsWith('*') ? '%' : ''}${core}${pattern.endsWith('*') ? '%' : ''}`;
  return `${column} LIKE ${p.add(like)} ESCAPE '\\'`;
}

/** SQL condition for an event matcher. */
export function matcherSql(matcher: EventMatcherDto, p: Params, alias = ''): string {
  const parts = [`${alias}type = ${p.add(matcher.type)}`];
  if (matcher.name) parts.push(matchText(`${alias}name`, matcher.name, p));
  if (matcher.page) {
    const hasWildcard = matcher.page.startsWith('*') || matcher.page.endsWith('*');
    const page = hasWildcard ? matcher.page : (normalizePagePath(matcher.page) ?? matcher.page);
    parts.push(matchText(`${alias}path`, page, p));
  }
  return `(${parts.join(' AND ')})`;
}

/** The path item of an event (METRICS.md, journeys and patterns). */
export const PATH_ITEM = `CASE WHEN type = 'page_view' THEN path WHEN type = 'action' THEN 'action:' || name ELSE type END`;

/** A ratio, or null when the divisor is 0. Always within [0, 1] for counts of subsets. */
export function ratio(numerator: number, denominator: number): number | null {
  return denominator === 0 ? null : numerator / denominator;
}

export const num = (value: unknown): number =>
  value === null || value === undefined ? 0 : Number(value);

/** Seconds with millisecond precision. */
export const seconds = (ms: number): number => Math.round(ms) / 1000;
