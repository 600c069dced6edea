import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { PreferencesModule } from '../preferences/preferences.module.js';
import { SessionModule } from '../session/session.module.js';
import { TrackingModule } from '../tracking/tracking.module.js';
import { UsersModule } from '../users/users.module.js';
import { AuditService } from './audit.service.js';
import { AdminComplianceController, ComplianceController } from './compliance.controller.js';
import { ConsentService } from './consent.service.js';
import { DataRetentionService } from './data-retention.service.js';
import { AuditEntry } from './entities/audit-entry.entity.js';
import { Consent } from './entities/consent.entity.js';
import { ErasureReceipt } from './entities/erasure-receipt.entity.js';
import { RetentionRun } from './entities/retention-run.entity.js';
import { ErasureService } from './erasure.service.js';
import { ExportService } from './export.service.js';
import { RetentionJob } from './jobs/retention.job.js';

/** Consent ledger, export, erasure, retention and the audit log. */
@Module({
  imports: [
    TypeOrmModule.forFeature([Consent, AuditEntry, ErasureReceipt, RetentionRun]),
    UsersModule,
    SessionModule,
    TrackingModule,
    PreferencesModule,
  ],
  controllers: [ComplianceController, AdminComplianceController],
  providers: [
    AuditService,
    ConsentService,
    ExportService,
    ErasureService,
    DataRetentionService,
    RetentionJob,
  ],
})
export class ComplianceModule {}
