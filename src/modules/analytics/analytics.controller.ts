import { Body, Controller, Get, HttpCode, Post, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Roles } from '../../common/auth/auth.decorators.js';
import { AnalyticsService } from './analytics.service.js';
import { BehaviourService } from './behaviour.service.js';
import {
  ActiveUsersQueryDto,
  FeaturesQueryDto,
  FunnelDto,
  LimitedRangeQueryDto,
  PatternsQueryDto,
  RangeQueryDto,
  ReportQueryDto,
  RetentionDto,
  SeriesQueryDto,
  TransitionsQueryDto,
} from './dto/analytics.dto.js';
import {
  ActiveSeriesDto,
  ActiveUsersDto,
  EventBreakdownDto,
  FeaturesDto,
  FunnelResultDto,
  OverviewDto,
  PageListDto,
  PatternsDto,
  RealtimeDto,
  RetentionResultDto,
  SessionStatsDto,
  SystemReportDto,
  TransitionsDto,
} from './dto/analytics-responses.dto.js';
import { FunnelService } from './funnel.service.js';
import { ReportService } from './report.service.js';
import { RetentionService } from './retention.service.js';
import { resolveRange, resolveZone } from './time-buckets.js';
import { NoQueryDto } from '../../common/validation/no-query.dto.js';

const HOUR_MS = 3_600_000;

/** Analytics over everyone (admin). Definitions: METRICS.md; ranges are [from, to), default 30 days. */
@ApiTags('analytics')
@Roles('admin')
@Controller('api/analytics')
export class AnalyticsController {
  constructor(
    private readonly metrics: AnalyticsService,
    private readonly behaviour: BehaviourService,
    private readonly funnels: FunnelService,
    private readonly retentionService: RetentionService,
    private readonly reports: ReportService,
  ) {}

  /** Events, page views, active users, sessions, durations and bounce rate, beside the previous period. */
  @Get('overview')
  overview(@Query() query: RangeQueryDto): Promise<OverviewDto> {
    resolveZone(query.tz);
    return this.metrics.overview(resolveRange(query), query.include_api ?? true);
  }

  /** Distinct actors with an event in the last `hours` hours. */
  @Get('active-users')
  async activeUsers(@Query() query: ActiveUsersQueryDto): Promise<ActiveUsersDto> {
    const hours = query.hours ?? 24;
    const now = Date.now();
    const active = await this.metrics.activeActors(
      { from: now - hours * HOUR_MS, to: now + 1 },
      query.include_api ?? true,
    );
    return { active_users: active, hours };
  }

  /** DAU, WAU, MAU and stickiness (DAU/MAU) per day. */
  @Get('active-users/series')
  async activeSeries(@Query() query: SeriesQueryDto): Promise<ActiveSeriesDto> {
    const items = await this.metrics.activeSeries(
      resolveRange(query),
      resolveZone(query.tz),
      query.include_api ?? true,
    );
    return { interval: 'day', items };
  }

  /** Actors active in the last 5 minutes and events per minute over the last 30. */
  @Get('realtime')
  realtime(@Query() _query: NoQueryDto): Promise<RealtimeDto> {
    return this.metrics.realtime();
  }

  /** Popular pages: views, visitors, entries, exits, exit rate. */
  @Get('pages')
  async pages(@Query() query: LimitedRangeQueryDto): Promise<PageListDto> {
    resolveZone(query.tz);
    return { items: await this.metrics.pages(resolveRange(query), query.limit ?? 10) };
  }

  /** Session durations (count, mean, median, p90, share of zero) and bounce rate. */
  @Get('sessions')
  sessions(@Query() query: RangeQueryDto): Promise<SessionStatsDto> {
    resolveZone(query.tz);
    return this.metrics.sessionStats(resolveRange(query), query.include_api ?? true);
  }

  /** Events, actors and sessions per event type and per action name. */
  @Get('events')
  async events(@Query() query: RangeQueryDto): Promise<EventBreakdownDto> {
    resolveZone(query.tz);
    return { items: await this.metrics.breakdown(resolveRange(query), query.include_api ?? true) };
  }

  /** The most common n-step paths through sessions (api_request left out unless include_api). */
  @Get('patterns')
  patterns(@Query() query: PatternsQueryDto): Promise<PatternsDto> {
    resolveZone(query.tz);
    return this.behaviour.patterns(
      resolveRange(query),
      query.n ?? 3,
      query.limit ?? 20,
      query.include_api ?? false,
    );
  }

  /** What comes after `item`: next-item probabilities, `$exit` included. */
  @Get('transitions')
  transitions(@Query() query: TransitionsQueryDto): Promise<TransitionsDto> {
    resolveZone(query.tz);
    return this.behaviour.transitions(resolveRange(query), query.item, query.include_api ?? false);
  }

  /** Adoption of features (sets of action names). */
  @Get('features')
  features(@Query() query: FeaturesQueryDto): Promise<FeaturesDto> {
    resolveZone(query.tz);
    const names = [...new Set(query.features.split(','))];
    return this.behaviour.features(resolveRange(query), names, query.include_api ?? true);
  }

  /** An ordered conversion funnel of 2-10 steps. */
  @Post('funnel')
  @HttpCode(200)
  funnel(@Body() dto: FunnelDto): Promise<FunnelResultDto> {
    return this.funnels.funnel({
      steps: dto.steps,
      windowMs: (dto.window_s ?? 14 * 86_400) * 1000,
      unit: dto.unit ?? 'user',
      range: resolveRange(dto),
    });
  }

  /** Cohort retention by day, week or month. */
  @Post('retention')
  @HttpCode(200)
  retention(@Body() dto: RetentionDto): Promise<RetentionResultDto> {
    const zone = resolveZone(dto.tz);
    const periods = dto.periods ?? 8;
    const range =
      dto.from || dto.to
        ? resolveRange(dto)
        : RetentionService.defaultRange(dto.period, periods, zone);
    return this.retentionService.retention({
      start: dto.start,
      return: dto.return,
      period: dto.period,
      periods,
      range,
      zone,
    });
  }

  /** A system report (overview, top pages, events, sessions, active users) as JSON or CSV. */
  @Get('report')
  @ApiProduces('application/json', 'text/csv')
  @ApiOkResponse({ type: SystemReportDto, description: 'JSON, or with format=csv a CSV download' })
  async report(@Query() query: ReportQueryDto, @Res({ passthrough: true }) reply: FastifyReply) {
    const report = await this.reports.systemReport(
      resolveRange(query),
      resolveZone(query.tz),
      query.include_api ?? true,
    );
    if (query.format === 'csv') {
      void reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="analytics-report.csv"');
      return this.reports.systemReportCsv(report);
    }
    return report;
  }
}
