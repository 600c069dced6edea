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
  const sent: { status?: number } = {};
  const reply = {
    sent: false,
    header: () => reply,
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
  return { logged, status: sent.status };
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
