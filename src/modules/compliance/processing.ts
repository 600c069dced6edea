import type { AppConfig } from '../../common/config/config.js';

const days = (n: number) => (n === 0 ? 'kept until erasure' : `${n} days`);

/**
 * The record of processing (GDPR Art. 30), and the Art. 15 information given
 * with every export, generated from configuration so it cannot drift.
 */
export function processingRecord(config: AppConfig) {
  const r = config.compliance.retention;
  return {
    controller_note: 'Filled in by the operator of this service',
    consent_mode: config.compliance.consentMode,
    consent_types: config.compliance.consentTypes,
    purposes: [
      {
        purpose: 'authentication and session security',
        lawful_basis: 'contract (Art. 6(1)(b)) and legitimate interest in security (Art. 6(1)(f))',
        data_categories: [
          'account (username, e-mail, password hash)',
          'sessions (public id, times, IP, user agent)',
          'session security events',
        ],
        retention: {
          sessions: 'until expiry or revocation, then deleted by the cleanup job',
          session_events: days(r.sessionEventsDays),
          ip_addresses: r.ipDays === 0 ? 'kept' : `anonymised after ${r.ipDays} days`,
        },
      },
      {
        purpose: 'product analytics',
        lawful_basis:
          config.compliance.consentMode === 'opt-in'
            ? 'consent (Art. 6(1)(a))'
            : 'legitimate interest with opt-out (Art. 6(1)(f))',
        data_categories: [
          'activity events (pages, actions, API requests)',
          // Retention anonymises the IPs of sessions, not of events: what is stored is what stays.
          config.tracking.ipAnonymization ? 'anonymised IP' : 'IP address',
          'user agent',
        ],
        retention: { events: days(r.eventsDays) },
        controls: ['analytics consent', 'privacy.allow_analytics preference'],
      },
      {
        purpose: 'personalisation',
        lawful_basis: 'contract (Art. 6(1)(b))',
        data_categories: ['preferences', 'session state'],
        retention: {
          preferences: 'kept until changed or erased',
          session_data: 'deleted with its session',
        },
      },
      {
        purpose: 'accountability',
        lawful_basis: 'legal obligation (Art. 6(1)(c)), Art. 5(2) and 7(1)',
        data_categories: ['consent ledger', 'audit log'],
        retention: { consents: 'kept until erasure', audit_log: days(r.auditDays) },
      },
    ],
    recipients: [],
    transfers_outside_eea: false,
  };
}
