import {
  ArgumentsHost,
  InternalServerErrorException,
  ServiceUnavailableException,
} from '@nestjs/common';
import { AllExceptionsFilter } from './all-exceptions.filter';
import type { MethodRouter } from '../http/method-router';

/** Runs the filter on `exception`; returns what it logged at error and the status it sent. */
function handle(exception: unknown) {
  const logged: unknown[] = [];
  const request = {
    id: 'req-1',
    raw: {},
    log: { error: (...args: unknown[]) => logged.push(args) },
  };
  const sent: { status?: number; headers: Record<string, string> } = { headers: {} };
  const reply = {
    sent: false,
    header: (name: string, value: string) => {
      sent.headers[name] = value;
      return reply;
    },
    status: (code: number) => {
      sent.status = code;
      return reply;
    },
    send: () => reply,
  };
  const host = {
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }),
  } as unknown as ArgumentsHost;
  new AllExceptionsFilter({} as MethodRouter).catch(exception, host);
  return { logged, status: sent.status, headers: sent.headers };
}

describe('AllExceptionsFilter logging', () => {
  it('logs an unexpected error with its stack', () => {
    const { logged, status } = handle(new Error('boom'));
    expect(status).toBe(500);
    expect(logged).toHaveLength(1);
    expect(JSON.stringify(logged[0])).toContain('boom');
  });

  it('logs a 500 the code raised on purpose', () => {
    const { logged, status } = handle(new InternalServerErrorException('No session'));
    expect([status, logged.length]).toEqual([500, 1]);
  });

  it("logs no stack for the service's own 503 (back-pressure, not a fault)", () => {
    const { logged, status } = handle(
      new ServiceUnavailableException('The event queue is full; retry shortly'),
    );
    expect([status, logged.length]).toEqual([503, 0]);
  });
});

describe('AllExceptionsFilter on a locked SQLite file', () => {
  it('answers 503 with Retry-After, bare or wrapped by TypeORM, and still logs it', () => {
    const locked = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    const wrapped = Object.assign(new Error('QueryFailedError'), { driverError: locked });
    for (const exception of [locked, wrapped]) {
      const { logged, status, headers } = handle(exception);
      expect([status, headers['retry-after'], logged.length]).toEqual([503, '1', 1]);
    }
    expect(
      handle(Object.assign(new Error('constraint'), { code: 'SQLITE_CONSTRAINT' })).status,
    ).toBe(500);
  });
});
