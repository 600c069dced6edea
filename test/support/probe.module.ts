import {
  Body,
  Controller,
  ForbiddenException,
  Get,
  Module,
  Post,
  UnauthorizedException,
} from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsInt, IsString, Length, Max, Min, ValidateNested } from 'class-validator';
import { Public } from '../../src/common/decorators/public.decorator';

class ProbeItemDto {
  @IsString()
  @Length(1, 10)
  readonly name!: string;
}

class ProbeDto {
  @IsInt()
  @Min(1)
  @Max(10)
  readonly count!: number;

  @ValidateNested({ each: true })
  @Type(() => ProbeItemDto)
  readonly items!: ProbeItemDto[];
}

/** Routes that raise each class of error, to test the pipeline without feature modules. */
@Public()
@Controller('probe')
class ProbeController {
  @Post('echo')
  echo(@Body() body: ProbeDto) {
    return { count: body.count, items: body.items.length };
  }

  @Get('crash')
  crash(): never {
    throw new Error("SELECT secret_column FROM users WHERE token = 'abc' failed");
  }

  @Get('unauthorized')
  unauthorized(): never {
    throw new UnauthorizedException('Authentication required');
  }

  @Get('forbidden')
  forbidden(): never {
    throw new ForbiddenException({ error: 'reauth_required', message: 'Re-authenticate first' });
  }
}

@Module({ controllers: [ProbeController] })
export class ProbeModule {}
