import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../../common/database/database.service.js';
import { anonymizeIp } from '../../common/http/ip-anonymize.js';

/** Retention work on the session module's tables, called by the compliance retention job. */
@Injectable()
export class SessionRetentionService {
  constructor(private readonly database: DatabaseService) {}

  /**
   * Anonymises up to `batch` IPs recorded before `cutoff` on sessions and on
   * session events. Already anonymised addresses are skipped: `x.y.z.0`, and
   * IPv6 of at most three groups before a final `::` (at most 4 colons);
   * `2001:db8:1:2::` ends in `::` too but is a full /64 address.
   */
  async anonymizeIpsBefore(cutoff: number, batch: number): Promise<number> {
    let changed = 0;
    for (const table of ['sessions', 'session_events']) {
      const rows = await this.database.query<{ id: string | number; ip: string }>(
        `SELECT id, ip FROM ${table}
         WHERE created_at < ? AND ip IS NOT NULL AND ip NOT LIKE '%.0'
           AND NOT (ip LIKE '%::' AND LENGTH(ip) - LENGTH(REPLACE(ip, ':', '')) <= 4)
         LIMIT ${batch}`,
        [cutoff],
      );
      if (rows.length === 0) continue;
      await this.database.transaction(async (manager) => {
        for (const row of rows) {
          await this.database.executeIn(manager, `UPDATE ${table} SET ip = ? WHERE id = ?`, [
            anonymizeIp(row.ip),
            row.id,
          ]);
        }
      });
      changed += rows.length;
    }
    return changed;
  }
}
