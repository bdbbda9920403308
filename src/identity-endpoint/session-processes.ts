import { readFileSync } from 'node:fs';

/** How the session registry tells whether a session's process still runs. */
export interface ProcessProbe {
  /** What identifies the process now beyond its pid (boot and start time), or null where the OS does not tell. */
  mark(pid: number): string | null;
  /** Whether `pid` still runs and, when `mark` is known, is still the same process. */
  alive(pid: number, mark: string | null): boolean;
}

const readTrimmed = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
};

/**
 * Linux: the boot id and the process's start time (field 22 of
 * `/proc/{pid}/stat`, in clock ticks since boot). Together they name one
 * process for good: after a reboot, or once the pid is reused, the mark differs.
 */
function linuxMark(pid: number): string | null {
  const boot = readTrimmed('/proc/sys/kernel/random/boot_id');
  const stat = readTrimmed(`/proc/${pid}/stat`);
  if (!boot || !stat) return null;
  // The command name (field 2) is in parentheses and may hold spaces: fields count from its end.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[19];
  return start && /^\d+$/.test(start) ? `${boot}:${start}` : null;
}

export const systemProcesses: ProcessProbe = {
  mark: (pid) => (process.platform === 'linux' ? linuxMark(pid) : null),
  alive(pid, mark) {
    try {
      process.kill(pid, 0);
    } catch (e) {
      // EPERM: it runs, as another user.
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    }
    return mark === null || this.mark(pid) === mark;
  },
};
