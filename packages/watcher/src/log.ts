/**
 * Structured logs: one JSON object per event on stderr, or one readable line per event when stderr is a
 * terminal. Every event has a dotted name (`apply.ok`, `artifact.invalid`, ...) and flat fields.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text' | 'auto';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  log(level: LogLevel, event: string, message: string, fields?: LogFields): void;
  debug(event: string, message: string, fields?: LogFields): void;
  info(event: string, message: string, fields?: LogFields): void;
  warn(event: string, message: string, fields?: LogFields): void;
  error(event: string, message: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly format?: LogFormat;
  readonly write?: (line: string) => void;
  readonly isTty?: boolean;
  readonly now?: () => number;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = LEVELS[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const tty = options.isTty ?? Boolean(process.stderr.isTTY);
  const text = options.format === 'text' || (options.format !== 'json' && tty);
  const now = options.now ?? Date.now;

  const logger: Logger = {
    log(level, event, message, fields = {}) {
      if (LEVELS[level] < threshold) return;
      const time = new Date(now()).toISOString();
      if (text) {
        const extras = Object.entries(fields)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${k}=${formatValue(v)}`)
          .join(' ');
        write(`${time.slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${event.padEnd(18)} ${message}${extras ? `  ${extras}` : ''}\n`);
      } else {
        write(`${JSON.stringify({ time, level, event, msg: message, ...fields })}\n`);
      }
    },
    debug: (event, message, fields) => logger.log('debug', event, message, fields),
    info: (event, message, fields) => logger.log('info', event, message, fields),
    warn: (event, message, fields) => logger.log('warn', event, message, fields),
    error: (event, message, fields) => logger.log('error', event, message, fields),
  };
  return logger;
}

/** A logger that keeps events in memory, for tests. */
export function createMemoryLogger(): Logger & { readonly events: { level: LogLevel; event: string; msg: string; fields: LogFields }[] } {
  const events: { level: LogLevel; event: string; msg: string; fields: LogFields }[] = [];
  const logger = {
    events,
    log(level: LogLevel, event: string, msg: string, fields: LogFields = {}) {
      events.push({ level, event, msg, fields });
    },
    debug: (event: string, msg: string, fields?: LogFields) => logger.log('debug', event, msg, fields),
    info: (event: string, msg: string, fields?: LogFields) => logger.log('info', event, msg, fields),
    warn: (event: string, msg: string, fields?: LogFields) => logger.log('warn', event, msg, fields),
    error: (event: string, msg: string, fields?: LogFields) => logger.log('error', event, msg, fields),
  };
  return logger;
}
