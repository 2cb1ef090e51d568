"""What a person sees: reporters for a run (plain lines, JSON events, quiet, a live terminal
display) and the rendering of plan, status and outputs."""
