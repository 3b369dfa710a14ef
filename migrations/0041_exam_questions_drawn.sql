-- whether a question was drawn into an attempt (then its options and answer stay as they
-- are): looked up by the question's id inside the attempts' arrays
CREATE INDEX exam_attempts_questions_idx ON exam_attempts USING gin (questions);
