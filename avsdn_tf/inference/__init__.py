"""Running a trained model on people's videos: predictors and timelines."""
