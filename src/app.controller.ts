import { Controller, Get } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { APP_INFO } from './app.info.js';
import { Public } from './common/decorators/public.decorator.js';
import { ServiceInfoDto } from './common/dto/service-info.dto.js';

@ApiTags('system')
@Controller()
export class AppController {
  /** What this service is and where its API documentation lives. */
  @Public()
  @SkipThrottle()
  @Get()
  info(): ServiceInfoDto {
    return { name: APP_INFO.name, version: APP_INFO.version, docs: '/docs' };
  }
}
