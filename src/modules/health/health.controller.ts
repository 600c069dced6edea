import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { SkipThrottle } from '@nestjs/throttler';
import { Public } from '../../common/decorators/public.decorator.js';
import { SkipTracking } from '../../common/decorators/skip-tracking.decorator.js';
import { EventWriter } from '../tracking/event-writer.js';
import { LivenessDto, ReadinessDto } from './dto/health.dto.js';

const DATABASE_PING_TIMEOUT_MS = 1500;

@ApiTags('system')
@Public()
@SkipThrottle()
@SkipTracking()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly eventWriter: EventWriter,
  ) {}

  /** Liveness: the process is up and serving requests. Touches no dependency. */
  @Get()
  live(): LivenessDto {
    return { status: 'ok', uptime_s: Math.round(process.uptime()) };
  }

  /**
   * Readiness: the database answers (503 when it does not), with the event
   * writer's queue depth, how many automatic events it had to drop or lose,
   * how many session summaries it had to recompute, and where it commits.
   */
  @Get('ready')
  @ApiOkResponse({ type: ReadinessDto, description: 'Every dependency is up' })
  @ApiResponse({ status: 503, description: 'A dependency is down' })
  async ready(): Promise<ReadinessDto> {
    try {
      await this.health.check([
        () => this.database.pingCheck('database').withTimeout(DATABASE_PING_TIMEOUT_MS),
      ]);
    } catch {
      throw new ServiceUnavailableException({
        message: 'Not ready: the database did not answer',
        details: [{ check: 'database', status: 'down' }],
      });
    }
    const { queued, dropped, failed, rebuiltSummaries, writer } = this.eventWriter.stats();
    return {
      status: 'ok',
      checks: { database: 'up' },
      tracking: {
        queued,
        dropped_events: dropped,
        failed_events: failed,
        rebuilt_summaries: rebuiltSummaries,
        writer,
      },
    };
  }
}
