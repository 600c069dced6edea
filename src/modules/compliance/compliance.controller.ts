import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { auditContext } from '../../common/audit.js';
import type { AuthUser } from '../../common/auth/auth-context.js';
import { CurrentUser, RequireFreshAuth, Roles } from '../../common/auth/auth.decorators.js';
import { AppConfig } from '../../common/config/config.js';
import { SkipTracking } from '../../common/decorators/skip-tracking.decorator.js';
import { PaginationQueryDto } from '../../common/pagination/pagination.js';
import { clearSessionCookie } from '../session/session-cookie.js';
import { AuditService } from './audit.service.js';
import { ConsentService } from './consent.service.js';
import { DataRetentionService } from './data-retention.service.js';
import {
  AuditPageDto,
  AuditQueryDto,
  ConsentPageDto,
  ConsentRecordedDto,
  CurrentConsentsDto,
  ErasureResultDto,
  RecordConsentDto,
  RetentionRunResultDto,
  RetentionStatusDto,
} from './dto/compliance.dto.js';
import { ErasureService } from './erasure.service.js';
import { ExportService } from './export.service.js';
import { processingRecord } from './processing.js';
import { ApiNoSuchUser } from '../users/existing-user.pipe.js';
import { parseUuid } from '../../common/validation/uuid.js';

function attachment(
  stream: Awaited<ReturnType<ExportService['export']>>,
  userId: string,
): StreamableFile {
  return new StreamableFile(stream, {
    type: 'application/json; charset=utf-8',
    disposition: `attachment; filename="personal-data-${userId}.json"`,
  });
}

const EXPORT_DESCRIPTION =
  'Everything held about the user as one JSON download (Content-Disposition: attachment): ' +
  'user, sessions, session_data, session_data_updated_at, session_events, activities, preferences, ' +
  'consents, audit, processing';

/** The caller's own GDPR rights: consent, access (export), erasure. */
@ApiTags('compliance')
@Controller('api')
export class ComplianceController {
  constructor(
    private readonly consents: ConsentService,
    private readonly exports: ExportService,
    private readonly erasure: ErasureService,
    private readonly config: AppConfig,
  ) {}

  /** Records a consent decision (seed path). `granted` must be a JSON boolean. */
  @Post('consent')
  @HttpCode(200)
  async recordConsent(
    @CurrentUser() user: AuthUser,
    @Body() dto: RecordConsentDto,
    @Req() request: FastifyRequest,
  ): Promise<ConsentRecordedDto> {
    const consent = await this.consents.record(user.id, dto, auditContext(request));
    return { status: 'success', message: 'Consent recorded', consent };
  }

  /**
   * Current consent per type: the latest decision, else the default (for
   * analytics the consent mode's, for other purposes not granted).
   */
  @Get('consent')
  current(@CurrentUser() user: AuthUser): Promise<CurrentConsentsDto> {
    return this.consents.current(user.id);
  }

  /** The consent ledger, newest first. */
  @Get('consent/history')
  history(
    @CurrentUser() user: AuthUser,
    @Query() query: PaginationQueryDto,
  ): Promise<ConsentPageDto> {
    return this.consents.history(user.id, query);
  }

  /** Everything held about the caller, as one JSON download (seed path). */
  @Get('gdpr/export')
  @ApiProduces('application/json')
  @ApiOkResponse({ description: EXPORT_DESCRIPTION, schema: { type: 'object' } })
  async export(
    @CurrentUser() user: AuthUser,
    @Req() request: FastifyRequest,
  ): Promise<StreamableFile> {
    return attachment(await this.exports.export(user.id, auditContext(request)), user.id);
  }

  /** Erases the caller's account and data in one transaction (seed path). Needs fresh auth. */
  @Delete('gdpr/delete')
  @RequireFreshAuth()
  @SkipTracking() // an api_request event would outlive the erasure it records
  @ApiOkResponse({ type: ErasureResultDto })
  async erase(
    @CurrentUser() user: AuthUser,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ErasureResultDto> {
    const result = await this.erasure.erase(user.id, 'self', auditContext(request));
    clearSessionCookie(reply, this.config.session.cookieSecure);
    void reply.header('clear-site-data', '"cookies"');
    return result;
  }
}

/** Staff-side compliance. */
@ApiTags('admin')
@Roles('admin')
@Controller('api')
export class AdminComplianceController {
  constructor(
    private readonly exports: ExportService,
    private readonly erasure: ErasureService,
    private readonly retention: DataRetentionService,
    private readonly audit: AuditService,
    private readonly config: AppConfig,
  ) {}

  @Get('admin/users/:id/export')
  @ApiProduces('application/json')
  @ApiOkResponse({ description: EXPORT_DESCRIPTION, schema: { type: 'object' } })
  @ApiNoSuchUser()
  async export(
    @Param('id', parseUuid('id')) userId: string,
    @Req() request: FastifyRequest,
  ): Promise<StreamableFile> {
    return attachment(await this.exports.export(userId, auditContext(request)), userId);
  }

  /** Erasure handled by staff. Needs the admin's fresh auth. */
  @Delete('admin/users/:id/data')
  @RequireFreshAuth()
  @SkipTracking()
  @ApiOkResponse({ type: ErasureResultDto })
  @ApiNoSuchUser()
  eraseUser(
    @Param('id', parseUuid('id')) userId: string,
    @Req() request: FastifyRequest,
  ): Promise<ErasureResultDto> {
    return this.erasure.erase(userId, 'admin', auditContext(request));
  }

  @Get('admin/retention')
  async retentionStatus(): Promise<RetentionStatusDto> {
    return { policies: this.retention.policies(), runs: await this.retention.lastRuns() };
  }

  /** Runs the retention policies now and returns the counts. */
  @Post('admin/retention/run')
  @HttpCode(200)
  async runRetention(@Req() request: FastifyRequest): Promise<RetentionRunResultDto> {
    const counts = await this.retention.run('manual', Date.now(), auditContext(request));
    return { status: counts ? 'completed' : 'skipped: another run is in progress', counts };
  }

  @Get('admin/audit')
  auditLog(@Query() query: AuditQueryDto): Promise<AuditPageDto> {
    return this.audit.list({
      action: query.action,
      userId: query.user_id,
      limit: query.limit,
      cursor: query.cursor,
    });
  }

  /** The record of processing (Art. 30), generated from configuration. */
  @Get('compliance/processing')
  @ApiOkResponse({
    description: 'Purposes, data categories, recipients and retention periods',
    schema: { type: 'object' },
  })
  processing() {
    return processingRecord(this.config);
  }
}
