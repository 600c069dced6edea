// Generates src/metadata.ts: the Swagger CLI plugin's DTO metadata, computed
// ahead of time so that every way of running the code (tsc build, jest under
// swc, watch mode) documents the same DTO properties. The file is git-ignored
// and loaded by SwaggerModule.loadPluginMetadata in src/common/swagger.
import { PluginMetadataGenerator } from '@nestjs/cli/lib/compiler/plugins/plugin-metadata-generator.js';
import { ReadonlyVisitor } from '@nestjs/swagger/plugin';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { existsSync, writeFileSync } from 'node:fs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
process.chdir(root);

// The generator type-checks the project, which imports this very file: start from a stub.
const output = path.join(src, 'metadata.ts');
if (!existsSync(output)) {
  writeFileSync(output, 'export default async () => ({});\n');
}

new PluginMetadataGenerator().generate({
  visitors: [
    new ReadonlyVisitor({
      introspectComments: true,
      pathToSource: src,
      dtoFileNameSuffix: ['.dto.ts', '.entity.ts'],
      classValidatorShim: true,
    }),
  ],
  outputDir: src,
  watch: false,
  tsconfigPath: 'tsconfig.build.json',
  printDiagnostics: false,
});
