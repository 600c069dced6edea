import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronTime } from 'cron';
import { ScheduledJobs, SLOT_SEARCH_LIMIT, slotOf } from '../src/common/scheduling/scheduled-jobs';
import { sleep } from './support/auth';
import { startInstances, startTestApp, TEST_DB_TYPE, TestApp } from './support/test-app';

const DAY_MS = 24 * 60 * 60 * 1000;
const logger = new Logger('test');

describe('scheduled jobs', () => {
  describe('the slot a tick stands for', () => {
    const everyFiveSeconds = new CronTime('*/5 * * * * *');
    const at = (time: string) => Date.parse(`2026-12-03T10:00:${time}Z`);

    it('is the cron time the job was armed for, not the clock at the tick', () => {
      expect(slotOf(everyFiveSeconds, at('05.000'), at('05.000'))).toBe(at('05.000'));
      expect(slotOf(everyFiveSeconds, at('05.000'), at('05.900'))).toBe(at('05.000'));
      expect(slotOf(everyFiveSeconds, at('05.000'), at('09.999'))).toBe(at('05.000'));
    });

    it('moves past ticks that were skipped (a run still going, a blocked event loop)', () => {
      expect(slotOf(everyFiveSeconds, at('05.000'), at('10.000'))).toBe(at('10.000'));
      expect(slotOf(everyFiveSeconds, at('05.000'), at('21.300'))).toBe(at('20.000'));
    });

    it('steps over at most SLOT_SEARCH_LIMIT skipped ticks (a process suspended for days)', () => {
      const everySecond = new CronTime('* * * * * *');
      const armed = at('00.000');
      expect(slotOf(everySecond, armed, armed + 3 * DAY_MS)).toBe(armed + SLOT_SEARCH_LIMIT * 1000);
      expect(slotOf(everySecond, armed, armed + 9_999)).toBe(armed + 9_000);
    });
  });

  describe('registering a job', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp();
    });
    afterAll(async () => {
      await t.close();
    });

    it('reads its pattern in UTC, whatever the time zone of the machine', async () => {
      // The machine's zone as cron reads it (TZ cannot change inside jest); +05:30, so no
      // whole-hour offset can hide the difference.
      const resolvedOptions = Intl.DateTimeFormat.prototype.resolvedOptions;
      const machineZone = jest
        .spyOn(Intl.DateTimeFormat.prototype, 'resolvedOptions')
        .mockImplementation(function (this: Intl.DateTimeFormat) {
          return { ...resolvedOptions.call(this), timeZone: 'Asia/Kolkata' };
        });
      try {
        t.app
          .get(ScheduledJobs)
          .register('test-zone', '0 3 * * *', () => Promise.resolve(), logger);
      } finally {
        machineZone.mockRestore();
      }
      const job = t.app.get(SchedulerRegistry).getCronJob('test-zone');
      try {
        const next = job.nextDate().toUTC();
        expect([next.hour, next.minute, next.second]).toEqual([3, 0, 0]);
      } finally {
        await job.stop();
      }
    });
  });

  describe('claiming a slot', () => {
    let t: TestApp;
    let jobs: ScheduledJobs;
    const slots = async (job: string) =>
      (
        await t.dataSource.query<{ slot_at: string | number }[]>(
          `SELECT slot_at FROM job_slots WHERE job = '${job}' ORDER BY slot_at`,
        )
      ).map((row) => Number(row.slot_at));

    beforeAll(async () => {
      t = await startTestApp();
      jobs = t.app.get(ScheduledJobs);
    });
    afterAll(async () => {
      await t.close();
    });

    it('lets one claimant have a slot; another claiming it (a second instance) is refused', async () => {
      const slot = Date.parse('2026-12-03T03:00:00Z');
      const claims = await Promise.all([
        jobs.claim('test-once', slot),
        jobs.claim('test-once', slot),
      ]);
      expect(claims.sort()).toEqual([false, true]);
      expect(await jobs.claim('test-once', slot)).toBe(false);
      expect(await jobs.claim('test-once', slot + DAY_MS / 2)).toBe(true);
      expect(await jobs.claim('test-other-job', slot)).toBe(true);
      expect(await slots('test-once')).toEqual([slot, slot + DAY_MS / 2]);
    });

    it('forgets slots over a day older than the one claimed, of that job only', async () => {
      const slot = Date.parse('2026-12-10T03:00:00Z');
      await jobs.claim('test-prune', slot);
      await jobs.claim('test-prune', slot + DAY_MS);
      await jobs.claim('test-kept', slot);
      expect(await slots('test-prune')).toEqual([slot, slot + DAY_MS]);
      await jobs.claim('test-prune', slot + DAY_MS + 1);
      expect(await slots('test-prune')).toEqual([slot + DAY_MS, slot + DAY_MS + 1]);
      expect(await slots('test-kept')).toEqual([slot]);
    });
  });

  // Two instances on one SQLite file are not a supported deployment (one machine, one process).
  if (TEST_DB_TYPE === 'postgres') {
    it('runs each tick of a job once across instances that both schedule it', async () => {
      const { instances, close } = await startInstances(2, { RETENTION_CRON: '* * * * * *' });
      try {
        await sleep(3_500);
        for (const instance of instances)
          await instance.app.get(SchedulerRegistry).getCronJob('retention').stop();
        await sleep(500); // a run that had started finishes
        const db = instances[0].dataSource;
        const runs = await db.query<{ started_at: string }[]>(
          `SELECT started_at FROM retention_runs WHERE trigger = 'schedule' ORDER BY started_at`,
        );
        const claimed = await db.query<{ slot_at: string }[]>(
          `SELECT slot_at FROM job_slots WHERE job = 'retention' ORDER BY slot_at`,
        );
        expect(runs.length).toBeGreaterThanOrEqual(3);
        // One run per claimed second, each in the second it was scheduled for.
        expect(runs.map((run) => Math.floor(Number(run.started_at) / 1000) * 1000)).toEqual(
          claimed.map((slot) => Number(slot.slot_at)),
        );
      } finally {
        await close();
      }
    });
  }
});
