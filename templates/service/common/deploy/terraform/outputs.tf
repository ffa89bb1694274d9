output "models_bucket" {
  description = "Where model versions are published."
  value       = aws_s3_bucket.models.bucket
}

output "service_role_arn" {
  description = "The role the service assumes to read its models."
  value       = aws_iam_role.service.arn
}
