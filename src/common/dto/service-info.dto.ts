export class ServiceInfoDto {
  /** Package name of the service. */
  readonly name!: string;
  /** Semantic version of the running build. */
  readonly version!: string;
  /** Path of the Swagger UI. */
  readonly docs!: string;
}
