/** Least-squares line fitting and medians for trend rules. */

/** A fitted line y = intercept + slope·x. */
export interface LineFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination, 0..1 (1 when every point is on the line). */
  r2: number;
  points: number;
}

/** Fits a line through the points; undefined with fewer than 2 points or no spread in x. */
export function fitLine(points: ReadonlyArray<{ x: number; y: number }>): LineFit | undefined {
  const n = points.length;
  if (n < 2) return undefined;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const p of points) {
    sxx += (p.x - mx) ** 2;
    sxy += (p.x - mx) * (p.y - my);
    syy += (p.y - my) ** 2;
  }
  // x values that barely differ (relative to their size) give no usable slope
  if (sxx === 0 || Math.sqrt(sxx / n) < Math.abs(mx) * 1e-9) return undefined;
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { slope, intercept, r2, points: n };
}

/** Value of a fit at x. */
export const valueAt = (f: LineFit, x: number): number => f.intercept + f.slope * x;

/** Median of numbers (undefined when empty). */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
