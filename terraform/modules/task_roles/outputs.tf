output "execution_role_arn" {
  description = "ARN of the execution role (task definition executionRoleArn)."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "ARN of the task role (task definition taskRoleArn)."
  value       = aws_iam_role.task.arn
}

output "task_role_name" {
  description = "Name of the task role."
  value       = aws_iam_role.task.name
}
