// The reference ceiling: a minimal NestJS + Fastify app with one public GET
// route returning a small JSON object. Started as a child process by run.mjs.
require('reflect-metadata');
const { Controller, Get, Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { FastifyAdapter } = require('@nestjs/platform-fastify');

class BareController {
  info() {
    return { name: 'bare', version: '1.0.0', docs: '/docs' };
  }
}
Get()(
  BareController.prototype,
  'info',
  Object.getOwnPropertyDescriptor(BareController.prototype, 'info'),
);
Controller()(BareController);

class BareModule {}
Module({ controllers: [BareController] })(BareModule);

NestFactory.create(BareModule, new FastifyAdapter(), { logger: false })
  .then((app) => app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' }))
  .then(() => process.stdout.write('Listening\n'));
