/** A CLI failure: printed as one line on stderr, exit code 1 (2 for usage). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    /** The HTTP status of the refusal, when the error is a server's answer. */
    readonly httpStatus?: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
