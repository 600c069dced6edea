import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { Observable, Subject } from 'rxjs';
import type { StoredEvent } from './event-row.js';

/**
 * Committed events, as they commit, for the admin live stream. In-process:
 * with several app instances each stream shows the events its instance wrote.
 */
@Injectable()
export class LiveEventStream implements OnModuleInit {
  private readonly subject = new Subject<StoredEvent>();

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  /** Open streams would hold the server open at shutdown: end them first. */
  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('preClose', (done) => {
      this.subject.complete();
      done();
    });
  }

  get events(): Observable<StoredEvent> {
    return this.subject.asObservable();
  }

  /** Whether any stream is open (publishing is pointless otherwise). */
  get observed(): boolean {
    return this.subject.observed;
  }

  publish(events: StoredEvent[]): void {
    if (!this.subject.observed) return;
    for (const event of events) this.subject.next(event);
  }
}
