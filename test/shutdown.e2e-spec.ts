import { Controller, Get, Module } from '@nestjs/common';
import { Public } from '../src/common/decorators/public.decorator';
import { AnalyticsReader } from '../src/modules/analytics/analytics-reader';
import { startTestApp } from './support/test-app';

/** A query that keeps the analytics reader busy for a while (hundreds of ms). */
const SLOW_QUERY = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000)
  SELECT COUNT(*) AS n FROM c`;

let markStarted: () => void = () => undefined;
const started = new Promise<void>((resolve) => (markStarted = resolve));

@Public()
@Controller('slow-analytics')
class SlowAnalyticsController {
  constructor(private readonly reader: AnalyticsReader) {}

  @Get()
  async run() {
    const running = this.reader.query<{ n: number | string }>(SLOW_QUERY, []);
    markStarted();
    const [row] = await running;
    return { n: Number(row.n) };
  }
}

/** The reader with its real lifecycle hooks, behind a route of its own. */
@Module({ controllers: [SlowAnalyticsController], providers: [AnalyticsReader] })
class SlowAnalyticsModule {}

describe('shutdown', () => {
  it('lets an analytics query in flight finish before the reader stops (SIGTERM gave 500)', async () => {
    const t = await startTestApp({}, [SlowAnalyticsModule]);
    const response = t
      .http()
      .get('/slow-analytics')
      .then((res) => res);
    await started;
    const closing = t.close();
    const res = await response;
    await closing;
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ n: 3_000_000 });
  });
});
