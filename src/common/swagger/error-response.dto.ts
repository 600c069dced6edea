import { ApiProperty } from '@nestjs/swagger';

/** One field of a validation error and what is wrong with it. */
export class ErrorDetailDto {
  @ApiProperty({ description: 'Dotted path of the field, e.g. `steps.2.type`', example: 'page' })
  readonly field!: string;

  @ApiProperty({ type: [String], example: ['page must be a string'] })
  readonly errors!: string[];
}

/** The body of every error answer (see AllExceptionsFilter). */
export class ErrorResponseDto {
  @ApiProperty({ example: 400 })
  readonly status_code!: number;

  @ApiProperty({
    description: 'The HTTP reason phrase, or a code such as `reauth_required`, `csrf_rejected`',
    example: 'Bad Request',
  })
  readonly error!: string;

  @ApiProperty({ description: 'What went wrong, for people' })
  readonly message!: string;

  @ApiProperty({ description: 'Also in the X-Request-Id header and in every log line' })
  readonly request_id!: string;

  @ApiProperty({ type: String, nullable: true, description: "The caller's public session id" })
  readonly session_id!: string | null;

  @ApiProperty({
    type: [ErrorDetailDto],
    required: false,
    description: 'On errors of named body or query fields: each field and its errors',
  })
  readonly details?: ErrorDetailDto[];
}
