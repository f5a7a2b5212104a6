/**
 * Metrics in the Prometheus text format (version 0.0.4), written by hand: counters, gauges and
 * one histogram. The node's own set of them is in `node-metrics.ts`.
 *
 * The format, in short: for each family a `# HELP` and a `# TYPE` line, then one line per
 * sample, `name{label="value",...} number`. Label values escape `\`, `"` and newlines; help
 * texts escape `\` and newlines. A histogram has cumulative `_bucket{le="..."}` samples ending
 * with `le="+Inf"`, then `_sum` and `_count`.
 *
 * @module
 */

/** Label names and values of one sample. */
export type Labels = Readonly<Record<string, string>>;

/** One line of a family: an optional name suffix (`_bucket`, `_sum`, `_count`), labels, value. */
export interface Sample {
  readonly suffix?: string;
  readonly labels?: Labels;
  readonly value: number;
}

/** A metric family: every sample of one metric name. */
export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly samples: readonly Sample[];
}

/** The media type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes a help text: backslash and newline. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Formats a sample value: integers as such, `NaN`, `+Inf` and `-Inf` by name. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function formatLabels(labels: Labels | undefined): string {
  if (labels === undefined) return '';
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  for (const [k] of entries) if (!LABEL_NAME.test(k)) throw new RangeError(`invalid label name: ${k}`);
  return `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/**
 * Renders families in the text format, each with its HELP and TYPE lines; the text ends with
 * a newline.
 *
 * @throws {RangeError} for an invalid metric or label name.
 */
export function formatPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new RangeError(`invalid metric name: ${f.name}`);
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      lines.push(`${f.name}${s.suffix ?? ''}${formatLabels(s.labels)} ${formatValue(s.value)}`);
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** A counter (or gauge) with labels: one value per distinct set of label values. */
export class LabeledValues {
  readonly #values = new Map<string, { labels: Labels; value: number }>();

  /** Adds `n` (default 1) to the value of `labels`. */
  inc(labels: Labels = {}, n = 1): void {
    this.series(labels).value += n;
  }

  /**
   * The value of `labels` as an object to add to (made at 0 when new, and counted from then
   * on): a count per message keeps it, and needs no label object nor key per count.
   */
  series(labels: Labels): { value: number } {
    // Without JSON or sorting when there is one label, which is the common case.
    const keys = Object.keys(labels);
    const key =
      keys.length === 1
        ? `${keys[0]}=${labels[keys[0]!]}`
        : keys
            .sort()
            .map((k) => `${k}=${labels[k]}`)
            .join('\u0000');
    let cur = this.#values.get(key);
    if (cur === undefined) {
      cur = { labels: { ...labels }, value: 0 };
      this.#values.set(key, cur);
    }
    return cur;
  }

  /** The value of `labels` (0 when never incremented). */
  get(labels: Labels = {}): number {
    let total = 0;
    for (const v of this.#values.values()) {
      const all = Object.entries(labels).every(([k, x]) => v.labels[k] === x);
      if (all && Object.keys(v.labels).length === Object.keys(labels).length) total += v.value;
    }
    return total;
  }

  /** The samples, in the order their label sets first appeared. */
  samples(): Sample[] {
    return [...this.#values.values()].map((v) => ({ labels: v.labels, value: v.value }));
  }
}

/** Probe round-trip buckets, in seconds: loopback to a slow WAN. */
export const RTT_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/** A histogram with fixed upper bounds. */
export class Histogram {
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  /** @param bounds - bucket upper bounds, ascending; `+Inf` is implied */
  constructor(bounds: readonly number[] = RTT_BUCKETS) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new RangeError('histogram bounds must ascend');
    }
    this.#bounds = [...bounds];
    this.#counts = bounds.map(() => 0);
  }

  /** Records one observation. */
  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    for (let i = 0; i < this.#bounds.length; i++) {
      if (value <= this.#bounds[i]!) {
        this.#counts[i]!++;
        break;
      }
    }
  }

  /** How many observations were recorded. */
  get count(): number {
    return this.#count;
  }

  /** The cumulative `_bucket` samples, then `_sum` and `_count`. */
  samples(): Sample[] {
    const out: Sample[] = [];
    let cumulative = 0;
    this.#bounds.forEach((le, i) => {
      cumulative += this.#counts[i]!;
      out.push({ suffix: '_bucket', labels: { le: formatValue(le) }, value: cumulative });
    });
    out.push({ suffix: '_bucket', labels: { le: '+Inf' }, value: this.#count });
    out.push({ suffix: '_sum', value: this.#sum });
    out.push({ suffix: '_count', value: this.#count });
    return out;
  }
}
