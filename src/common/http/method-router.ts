import { Injectable } from '@nestjs/common';
import Router, { type HTTPMethod } from 'find-my-way';
import type { FastifyInstance } from 'fastify';

// OPTIONS is not mirrored: with CORS on, a catch-all preflight route matches every path,
// which would turn every unknown path into a 405.
const KNOWN_METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * A shadow of the application's routes, used only to tell "no such path"
 * (404) from "path exists, wrong method" (405 with `Allow`): Fastify answers
 * both with 404. Routes are mirrored as they are registered.
 */
@Injectable()
export class MethodRouter {
  private readonly router = Router();

  attach(fastify: FastifyInstance): void {
    fastify.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        if (!KNOWN_METHODS.includes(method as HTTPMethod)) continue;
        try {
          this.router.on(method as HTTPMethod, route.url, () => undefined);
        } catch {
          // The same method and path registered twice (e.g. HEAD for GET): already known.
        }
      }
    });
  }

  /** Methods that would match `path`; empty when the path is unknown. */
  allowedMethods(path: string): string[] {
    const pathname = path.split('?')[0] ?? path;
    return KNOWN_METHODS.filter((method) => this.router.find(method, pathname) !== null);
  }
}
