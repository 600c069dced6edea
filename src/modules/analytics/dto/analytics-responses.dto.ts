import { ApiProperty } from '@nestjs/swagger';

/**
 * Response shapes of the analytics endpoints, for Swagger. Definitions of
 * every figure: METRICS.md. Times are ISO-8601 UTC strings; rates are in
 * [0, 1], or null when their divisor is 0.
 */

/** A headline figure and the same figure over the period of equal length before. */
export class ComparedFigureDto {
  readonly value!: number | null;
  readonly previous!: number | null;
}

export class OverviewMetricsDto {
  readonly events!: ComparedFigureDto;
  readonly page_views!: ComparedFigureDto;
  readonly active_users!: ComparedFigureDto;
  readonly sessions!: ComparedFigureDto;
  readonly mean_session_duration_s!: ComparedFigureDto;
  readonly median_session_duration_s!: ComparedFigureDto;
  readonly bounce_rate!: ComparedFigureDto;
}

export class OverviewDto {
  readonly from!: string;
  readonly to!: string;
  readonly previous_from!: string;
  readonly previous_to!: string;
  readonly metrics!: OverviewMetricsDto;
}

export class ActiveUsersDto {
  readonly active_users!: number;
  readonly hours!: number;
}

export class ActiveDayDto {
  /** The local day (`tz`), `YYYY-MM-DD`. */
  readonly date!: string;
  readonly dau!: number;
  /** Distinct actors on days d-6..d. */
  readonly wau!: number;
  /** Distinct actors on days d-29..d. */
  readonly mau!: number;
  /** DAU / MAU. */
  readonly stickiness!: number | null;
}

export class ActiveSeriesDto {
  readonly interval!: 'day';
  readonly items!: ActiveDayDto[];
}

export class MinuteCountDto {
  readonly minute!: string;
  readonly events!: number;
}

export class RealtimeDto {
  /** Actors with an event in the last 5 minutes. */
  readonly active_users!: number;
  /** The last 30 minutes, oldest first. */
  readonly events_per_minute!: MinuteCountDto[];
}

export class PageFiguresDto {
  readonly page!: string;
  readonly views!: number;
  readonly visitors!: number;
  readonly entries!: number;
  readonly exits!: number;
  /** exits / views. */
  readonly exit_rate!: number | null;
}

export class PageListDto {
  readonly items!: PageFiguresDto[];
}

export class SessionStatsDto {
  readonly count!: number;
  readonly mean_s!: number | null;
  readonly median_s!: number | null;
  readonly p90_s!: number | null;
  readonly share_zero!: number | null;
  readonly bounce_rate!: number | null;
}

export class EventBreakdownItemDto {
  readonly type!: string;
  /** The action name for per-name rows of `action`; null on per-type rows. */
  readonly name!: string | null;
  readonly events!: number;
  readonly actors!: number;
  readonly sessions!: number;
}

export class EventBreakdownDto {
  readonly items!: EventBreakdownItemDto[];
}

export class PatternDto {
  /** n path items in order. */
  readonly sequence!: string[];
  /** Occurrences. */
  readonly count!: number;
  /** Sessions containing it. */
  readonly sessions!: number;
  /** sessions / total_sessions. */
  readonly support!: number | null;
}

export class PatternsDto {
  readonly n!: number;
  readonly total_sessions!: number;
  readonly items!: PatternDto[];
}

export class TransitionDto {
  /** The next path item, or `$exit`. */
  readonly next!: string;
  readonly count!: number;
  readonly probability!: number | null;
}

export class TransitionsDto {
  readonly item!: string;
  readonly total!: number;
  readonly items!: TransitionDto[];
}

export class FeatureFiguresDto {
  readonly feature!: string;
  /** The configured action names (FEATURES), or null when matched by name or `<name>.` prefix. */
  @ApiProperty({ type: [String], nullable: true })
  readonly actions!: readonly string[] | null;
  readonly users!: number;
  /** users / active users of the period. */
  readonly adoption_rate!: number | null;
  readonly events!: number;
  /** Actors whose first-ever feature event lies in the period. */
  readonly first_time_users!: number;
}

export class FeaturesDto {
  readonly active_users!: number;
  readonly items!: FeatureFiguresDto[];
}

export class FunnelStepDto {
  readonly step!: number;
  readonly type!: string;
  readonly name!: string | null;
  readonly page!: string | null;
  readonly count!: number;
  readonly conversion_from_start!: number | null;
  readonly conversion_from_previous!: number | null;
  readonly dropped!: number;
  readonly median_time_from_previous_s!: number | null;
}

export class FunnelResultDto {
  readonly unit!: 'user' | 'session';
  readonly window_s!: number;
  readonly from!: string;
  readonly to!: string;
  readonly steps!: FunnelStepDto[];
}

export class CohortDto {
  /** The cohort's period label (local to `tz`). */
  readonly cohort!: string;
  readonly start!: string;
  readonly size!: number;
  /** Actors back in each later period; null for periods not yet over. */
  @ApiProperty({ type: 'array', items: { type: 'number', nullable: true } })
  readonly retained!: (number | null)[];
  @ApiProperty({ type: 'array', items: { type: 'number', nullable: true } })
  readonly rates!: (number | null)[];
}

export class RetentionResultDto {
  readonly period!: 'day' | 'week' | 'month';
  readonly periods!: number;
  readonly tz!: string;
  readonly cohorts!: CohortDto[];
}

export class SystemReportDto {
  readonly generated_at!: string;
  readonly from!: string;
  readonly to!: string;
  readonly overview!: OverviewMetricsDto;
  readonly top_pages!: PageFiguresDto[];
  readonly event_breakdown!: EventBreakdownItemDto[];
  readonly sessions!: SessionStatsDto;
  readonly active_users!: ActiveDayDto[];
}

export class UserSummaryDto {
  readonly user_id!: string;
  readonly total_activities!: number;
  readonly total_sessions!: number;
  readonly first_activity!: string | null;
  readonly last_activity!: string | null;
  readonly avg_session_duration_s!: number;
  /** Events per type. */
  readonly event_breakdown!: Record<string, number>;
}

export class JourneyStepDto {
  readonly event_type!: string;
  readonly name!: string | null;
  readonly page!: string | null;
  readonly event_data!: Record<string, unknown> | null;
  readonly timestamp!: string;
}

export class JourneyDto {
  /** In time order. */
  readonly journey!: JourneyStepDto[];
  readonly steps!: number;
  /** For the older steps; null when there are none. */
  readonly next_cursor!: string | null;
}

export class UserReportDto {
  readonly generated_at!: string;
  readonly summary!: UserSummaryDto;
  readonly recent_activity!: JourneyStepDto[];
}
