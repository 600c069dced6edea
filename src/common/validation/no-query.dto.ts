/**
 * The query of a route that takes no parameters. Declared all the same so
 * that the validation pipe refuses unknown ones (400), as on every other
 * route: a typo such as `?hours=1` on a route without them would otherwise
 * be ignored without a word.
 */
export class NoQueryDto {}
