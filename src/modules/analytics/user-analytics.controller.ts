import { Controller, Get, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { AuthSession, AuthUser } from '../../common/auth/auth-context.js';
import { CurrentSession, CurrentUser } from '../../common/auth/auth.decorators.js';
import { AnalyticsService } from './analytics.service.js';
import { BehaviourService } from './behaviour.service.js';
import { JourneyDto, UserReportDto, UserSummaryDto } from './dto/analytics-responses.dto.js';
import { JourneyQueryDto, UserReportQueryDto } from './dto/analytics.dto.js';
import { ReportService } from './report.service.js';
import { resolveRange } from './time-buckets.js';
import { NoQueryDto } from '../../common/validation/no-query.dto.js';

/** Analytics about the caller's own activity. */
@ApiTags('analytics')
@Controller('api/analytics')
export class UserAnalyticsController {
  constructor(
    private readonly metrics: AnalyticsService,
    private readonly behaviour: BehaviourService,
    private readonly reports: ReportService,
  ) {}

  /** The caller's activity summary (seed fields). */
  @Get('user')
  user(@CurrentUser() user: AuthUser, @Query() _query: NoQueryDto): Promise<UserSummaryDto> {
    return this.metrics.userSummary(user.id);
  }

  /**
   * The caller's journey: a session's events (default: the current session),
   * or all of their events in `from`..`to`; the latest first fetched, shown
   * in time order, `next_cursor` for older ones.
   */
  @Get('journey')
  journey(
    @CurrentUser() user: AuthUser,
    @CurrentSession() session: AuthSession,
    @Query() query: JourneyQueryDto,
  ): Promise<JourneyDto> {
    const ranged = query.from !== undefined || query.to !== undefined;
    return this.behaviour.journey(user.id, {
      sessionId: query.session_id ?? (ranged ? undefined : session.id),
      range: ranged ? resolveRange(query, Date.now(), 400) : undefined,
      includeApi: query.include_api ?? false,
      limit: query.limit,
      cursor: query.cursor,
    });
  }

  /** The caller's own report, JSON or CSV. */
  @Get('user/report')
  @ApiProduces('application/json', 'text/csv')
  @ApiOkResponse({ type: UserReportDto, description: 'JSON, or with format=csv a CSV download' })
  async report(
    @CurrentUser() user: AuthUser,
    @Query() query: UserReportQueryDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const report = await this.reports.userReport(user.id);
    if (query.format === 'csv') {
      void reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="my-activity-report.csv"');
      return this.reports.userReportCsv(report);
    }
    return report;
  }
}
