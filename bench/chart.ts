// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The bench chart: every case of every suite as its speed relative to its
 * native anchor (the C baseline of the same run: plain memcpy, libpmem2,
 * libpmemblk, libpmemlog), one bar per runtime, on a log scale with 1×
 * marked, labelled with the machine, the tools and the date. Plain SVG
 * text, made here: no library, no external service.
 *
 * @module
 */

/** One bar group: a case and its speed relative to C per runtime. */
export interface ChartRow {
  /** The suite (a heading). */
  suite: string;
  /** The case. */
  label: string;
  /** C's time over the runtime's (above 1: faster than C), per runtime. */
  speed: Record<string, number | undefined>;
  /** What the row is compared with ("libpmemblk write 4096"). */
  anchor: string;
}

/** The chart's caption lines. */
export interface ChartCaption {
  /** First line: what the chart shows. */
  title: string;
  /** Second line: machine, tools, date. */
  subtitle: string;
}

const COLORS: Record<string, string> = { deno: "#2b7bb9", bun: "#d9822b" };
const ROW = 17;
const BAR = 6;
const LABEL_W = 330;
const PLOT_W = 420;
const RIGHT = 70;
const TOP = 64;
const SUITE_GAP = 24;
/** The scale: 1/64 to 16 times C's speed. */
const MIN = 1 / 64;
const MAX = 16;

function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function x(v: number): number {
  const c = Math.min(MAX, Math.max(MIN, v));
  return LABEL_W + PLOT_W * Math.log(c / MIN) / Math.log(MAX / MIN);
}

function fmt(v: number): string {
  return v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2);
}

/**
 * The SVG document of the chart.
 *
 * @example Usage
 * ```ts ignore
 * import { renderChart } from "./chart.ts";
 * const svg = renderChart([{ suite: "blk", label: "read 4096",
 *   speed: { deno: 1.1, bun: 0.9 }, anchor: "libpmemblk" }],
 *   ["deno", "bun"], { title: "t", subtitle: "s" });
 * ```
 */
export function renderChart(
  rows: readonly ChartRow[],
  runtimes: readonly string[],
  caption: ChartCaption,
): string {
  const suites = [...new Set(rows.map((r) => r.suite))];
  const height = TOP + rows.length * ROW + suites.length * SUITE_GAP + 40;
  const width = LABEL_W + PLOT_W + RIGHT;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${
      escape(caption.title)
    }</text>`,
    `<text x="10" y="38" fill="#555">${escape(caption.subtitle)}</text>`,
  );
  // the legend
  let lx = LABEL_W;
  for (const rt of runtimes) {
    out.push(
      `<rect x="${lx}" y="46" width="10" height="8" fill="${
        COLORS[rt] ?? "#888"
      }"/>`,
      `<text x="${lx + 14}" y="54">${escape(rt)}</text>`,
    );
    lx += 60;
  }
  // the grid: powers of two, 1× in bold
  const plotBottom = height - 30;
  for (let v = MIN; v <= MAX; v *= 2) {
    const gx = x(v);
    const one = Math.abs(v - 1) < 1e-9;
    out.push(
      `<line x1="${gx}" y1="${TOP - 6}" x2="${gx}" y2="${plotBottom}" stroke="${
        one ? "#222" : "#ddd"
      }" stroke-width="${one ? 1.5 : 1}"/>`,
      `<text x="${gx}" y="${
        plotBottom + 14
      }" text-anchor="middle" fill="#555">${
        v >= 1 ? `${v}×` : `1/${1 / v}`
      }</text>`,
    );
  }
  out.push(
    `<text x="${LABEL_W + PLOT_W / 2}" y="${
      plotBottom + 27
    }" text-anchor="middle" fill="#555">speed relative to the native C anchor of the same run (log scale; right of 1× is faster)</text>`,
  );
  let y = TOP;
  for (const suite of suites) {
    y += SUITE_GAP;
    out.push(
      `<text x="10" y="${y - 6}" font-weight="bold" font-size="12">${
        escape(suite)
      }</text>`,
    );
    for (const r of rows.filter((row) => row.suite === suite)) {
      out.push(
        `<text x="${LABEL_W - 8}" y="${
          y + ROW / 2 + 3
        }" text-anchor="end"><title>${escape(`vs ${r.anchor}`)}</title>${
          escape(r.label)
        }</text>`,
      );
      runtimes.forEach((rt, i) => {
        const v = r.speed[rt];
        if (v === undefined || !Number.isFinite(v)) return;
        const by = y + 2 + i * (BAR + 1);
        out.push(
          `<rect x="${LABEL_W}" y="${by}" width="${
            Math.max(1, x(v) - LABEL_W)
          }" height="${BAR}" fill="${COLORS[rt] ?? "#888"}"><title>${
            escape(`${rt}: ${fmt(v)}× ${r.anchor}`)
          }</title></rect>`,
          `<text x="${x(v) + 3}" y="${by + BAR}" font-size="8" fill="#333">${
            fmt(v)
          }</text>`,
        );
      });
      y += ROW;
    }
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}
