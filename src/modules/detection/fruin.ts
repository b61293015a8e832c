/**
 * Fruin's levels of service for pedestrians (J. J. Fruin, "Pedestrian Planning and Design", 1971): the
 * space per person (m²) below which each level begins, for walkways and for queueing areas. Density in
 * persons/m² is its inverse.
 */
import type { FruinLevel } from './rule-language.ts';

/** Space per person (m²) at or above which the level is reached, A to E; below E's is F. */
const SPACE: Record<'walkway' | 'queueing', number[]> = {
  //          A     B     C     D     E
  walkway: [3.25, 2.32, 1.39, 0.93, 0.46],
  queueing: [1.21, 0.93, 0.65, 0.28, 0.19],
};

const LEVELS: FruinLevel[] = ['A', 'B', 'C', 'D', 'E', 'F'];

/** The level of service of a density (persons/m²). */
export function fruinLevel(density: number, standard: 'walkway' | 'queueing' = 'walkway'): FruinLevel {
  if (density <= 0) return 'A';
  const space = 1 / density;
  const bounds = SPACE[standard];
  for (let i = 0; i < bounds.length; i++) if (space >= bounds[i]!) return LEVELS[i]!;
  return 'F';
}

/** The density (persons/m²) above which a level (B–F) is reached. */
export function fruinDensity(level: FruinLevel, standard: 'walkway' | 'queueing' = 'walkway'): number {
  const i = LEVELS.indexOf(level);
  if (i <= 0) return 0;
  return 1 / SPACE[standard][i - 1]!;
}
