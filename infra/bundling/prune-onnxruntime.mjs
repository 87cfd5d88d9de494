// Bundling hook of the functions that ship onnxruntime-node: leaves only the Linux binaries of
// the target architecture (the package ships every platform: 291 MB, over Lambda's 250 MB) and
// fails the build when the layout of onnxruntime-node changed so that nothing would be left to
// load. Plain Node.js with no dependency, so `cdk deploy` runs it the same way on Linux, macOS
// and Windows (aws-cdk-lib runs hooks through `bash -c` or `cmd /c`: no shell built-ins here).
//
//   node prune-onnxruntime.mjs <asset folder> <x64|arm64>
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const [outputDir, arch] = process.argv.slice(2);
if (outputDir === undefined || (arch !== 'x64' && arch !== 'arm64')) {
  console.error('usage: node prune-onnxruntime.mjs <asset folder> <x64|arm64>');
  process.exit(2);
}

const bin = join(outputDir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
const binding = join(bin, 'linux', arch, 'onnxruntime_binding.node');
if (!existsSync(binding)) {
  console.error(
    `prune-onnxruntime: ${binding} is missing: onnxruntime-node changed its layout or was not installed; nothing would be left to load`,
  );
  process.exit(1);
}

let removed = 0;
for (const platform of readdirSync(bin, { withFileTypes: true })) {
  if (!platform.isDirectory()) continue;
  const platformDir = join(bin, platform.name);
  for (const entry of readdirSync(platformDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || (platform.name === 'linux' && entry.name === arch)) continue;
    rmSync(join(platformDir, entry.name), { recursive: true, force: true });
    removed += 1;
  }
  if (readdirSync(platformDir).length === 0) rmSync(platformDir, { recursive: true });
}
console.log(`prune-onnxruntime: kept linux/${arch}, removed ${removed} other platform folders`);
