/**
 * Vehicle profiles: which OSM ways a vehicle may use, in which direction, and how fast.
 * `car` follows the rules of ordinary traffic; `emergency` is a blue-light vehicle: it may use roads
 * closed to general traffic by access=private/delivery/customers/psv or tagged emergency=yes, and drives
 * 15 % faster than the posted speed, but it still honours one-ways and turn restrictions (a fire engine
 * driving against traffic is a tactical decision for the crew, not a routing default).
 */
export type ProfileName = 'car' | 'emergency';

export interface Profile {
  name: ProfileName;
  /** km/h by highway class; a class missing here is not routable. */
  speeds: Readonly<Record<string, number>>;
  /** multiply the effective speed (posted or class default) by this factor */
  speedFactor: number;
  /** access values that make a way unusable */
  deniedAccess: ReadonlySet<string>;
  /** if a way carries `emergency=yes|designated`, it is usable regardless of other access tags */
  honoursEmergencyAccess: boolean;
}

const SPEEDS: Record<string, number> = {
  motorway: 100,
  motorway_link: 60,
  trunk: 85,
  trunk_link: 50,
  primary: 65,
  primary_link: 45,
  secondary: 55,
  secondary_link: 40,
  tertiary: 45,
  tertiary_link: 35,
  unclassified: 35,
  residential: 30,
  living_street: 10,
  service: 15,
  road: 30,
};

export const PROFILES: Readonly<Record<ProfileName, Profile>> = {
  car: {
    name: 'car',
    speeds: SPEEDS,
    speedFactor: 1,
    deniedAccess: new Set([
      'no',
      'private',
      'agricultural',
      'forestry',
      'delivery',
      'customers',
      'emergency',
    ]),
    honoursEmergencyAccess: false,
  },
  emergency: {
    name: 'emergency',
    speeds: SPEEDS,
    speedFactor: 1.15,
    deniedAccess: new Set(['no', 'agricultural', 'forestry', 'restricted']),
    honoursEmergencyAccess: true,
  },
};

export function profileByName(name: string): Profile | undefined {
  return name === 'car' || name === 'emergency' ? PROFILES[name] : undefined;
}

/** Parses an OSM maxspeed value to km/h; undefined when it is not a plain number (zones, signals, none). */
export function parseMaxspeed(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(mph|km\/h|kmh|kph)?\s*$/i.exec(value);
  if (!m) return undefined;
  const v = Number(m[1]);
  if (!(v > 0)) return undefined;
  return m[2]?.toLowerCase() === 'mph' ? v * 1.609344 : v;
}

export interface WayRouting {
  /** km/h */
  speed: number;
  forward: boolean;
  backward: boolean;
}

/** Decides whether and how a way is routable for the profile; undefined = not routable. */
export function wayRouting(tags: Readonly<Record<string, string>>, profile: Profile): WayRouting | undefined {
  const highway = tags.highway;
  if (!highway) return undefined;
  const classSpeed = profile.speeds[highway];
  if (classSpeed === undefined) return undefined;
  if (tags.area === 'yes') return undefined;
  const emergencyOk =
    profile.honoursEmergencyAccess && (tags.emergency === 'yes' || tags.emergency === 'designated');
  if (!emergencyOk) {
    // the most specific access tag present decides (motorcar=yes overrides access=no)
    let decisive: string | undefined;
    for (const key of ['access', 'vehicle', 'motor_vehicle', 'motorcar'])
      if (tags[key] !== undefined) decisive = tags[key];
    if (decisive !== undefined) {
      const values = decisive.split(';').map((x) => x.trim());
      if (values.every((x) => profile.deniedAccess.has(x))) return undefined;
    }
    if (profile.honoursEmergencyAccess && tags.emergency === 'no') return undefined;
  }
  const posted = parseMaxspeed(tags.maxspeed);
  // A posted limit is an upper bound, not the typical speed: keep the class speed when it is lower
  // (e.g. 50 km/h posted on a residential street that is driven at 30).
  const base = posted === undefined ? classSpeed : Math.min(posted, Math.max(classSpeed, posted * 0.8));
  const speed = Math.max(3, base * profile.speedFactor);
  let forward = true;
  let backward = true;
  const oneway = tags.oneway;
  const implied = highway === 'motorway' || tags.junction === 'roundabout' || tags.junction === 'circular';
  if (oneway === 'yes' || oneway === '1' || oneway === 'true' || (implied && oneway !== 'no'))
    backward = false;
  else if (oneway === '-1' || oneway === 'reverse') forward = false;
  return { speed, forward, backward };
}
