"""Ideas (issue 13): a thread kind with votes, a per-room vote budget, a status with a written
response from a named decision-maker, "judge on merit" and "You said, we did"."""
