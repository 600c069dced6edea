export class LivenessDto {
  /** Always `ok` when the process answers. */
  readonly status!: 'ok';
  /** Seconds since the process started. */
  readonly uptime_s!: number;
}

export class ReadinessChecksDto {
  readonly database!: 'up';
}

export class ReadinessDto {
  readonly status!: 'ok';
  readonly checks!: ReadinessChecksDto;
}
