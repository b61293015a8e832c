import { describe, expect, it } from 'vitest';
import { circlePolygon, formatDistance, formatDuration, formatLonLat, parseLonLat } from './geo.ts';

const metres = (a: [number, number], b: [number, number]) => {
  const k = Math.PI / 180;
  const x = (b[0] - a[0]) * k * Math.cos(((a[1] + b[1]) / 2) * k);
  const y = (b[1] - a[1]) * k;
  return Math.hypot(x, y) * 6_371_008.8;
};

describe('circlePolygon', () => {
  it('is a closed ring whose vertices all lie at the radius from the centre', () => {
    const center: [number, number] = [-8.61, 41.15];
    const poly = circlePolygon(center, 250, 16);
    const ring = poly.coordinates[0]!;
    expect(poly.type).toBe('Polygon');
    expect(ring).toHaveLength(17);
    expect(ring[16]).toEqual(ring[0]);
    for (const p of ring) expect(metres(center, p)).toBeCloseTo(250, -0.5);
  });
});

describe('parseLonLat', () => {
  it('reads "lon,lat" with spaces', () => {
    expect(parseLonLat(' -8.61 , 41.15 ')).toEqual([-8.61, 41.15]);
  });
  it.each(['', '-8.61', '1,2,3', 'a,b', '181,0', '0,91', ',5'])('refuses %j', (text) => {
    expect(parseLonLat(text)).toBeNull();
  });
  it('round-trips with formatLonLat at six decimals', () => {
    expect(parseLonLat(formatLonLat([-8.123456789, 41.987654321]))).toEqual([-8.123457, 41.987654]);
  });
});

describe('formatting', () => {
  it('says durations the way a dispatcher reads them', () => {
    expect(formatDuration(42.4)).toBe('42 s');
    expect(formatDuration(265)).toBe('4 min 25 s');
    expect(formatDuration(3 * 3600 + 7 * 60)).toBe('3 h 7 min');
  });
  it('says distances in metres below a kilometre', () => {
    expect(formatDistance(999.4)).toBe('999 m');
    expect(formatDistance(2549)).toBe('2.5 km');
  });
});
