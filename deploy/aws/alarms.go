package main

import (
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"
)

// queueAlarmPeriod is the period of the queue alarms. SQS sends its metrics
// to CloudWatch every minute.
const queueAlarmPeriod = 5 * time.Minute

// addAlarms defines the alarms, each notifying cfg.AlarmTopicArn when set.
func addAlarms(stack awscdk.Stack, cfg Config, q queues, forwarder awslambda.Function, api awsapigateway.RestApi) {
	alarms := []awscloudwatch.Alarm{
		q.dead.MetricApproximateNumberOfMessagesVisible(metricOptions(queueAlarmPeriod, "Maximum")).
			CreateAlarm(stack, jsii.String("DeadLetterQueueNotEmpty"), &awscloudwatch.CreateAlarmOptions{
				AlarmDescription: jsii.String("Layover: batches reached the dead-letter queue because the " +
					"forwarder could not decode them. Inspect them, fix the cause and redrive them."),
				Threshold:          jsii.Number(1),
				EvaluationPeriods:  jsii.Number(1),
				ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
				TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
			}),
		q.main.MetricApproximateAgeOfOldestMessage(metricOptions(queueAlarmPeriod, "Maximum")).
			CreateAlarm(stack, jsii.String("OldestMessageTooOld"), &awscloudwatch.CreateAlarmOptions{
				AlarmDescription: jsii.String("Layover: a stored batch waits longer than " + formatDuration(cfg.MaxMessageAge) +
					". The forwarder is not running or cannot keep up. Batches expire after 4 days."),
				Threshold:          jsii.Number(cfg.MaxMessageAge.Seconds()),
				EvaluationPeriods:  jsii.Number(1),
				ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
				TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
			}),
		// Two failed periods in a row, so that one failed run during a
		// short Iterable outage does not notify anyone.
		forwarder.MetricErrors(metricOptions(max(cfg.ForwardEvery, queueAlarmPeriod), "Sum")).
			CreateAlarm(stack, jsii.String("ForwarderFailing"), &awscloudwatch.CreateAlarmOptions{
				AlarmDescription: jsii.String("Layover: forward runs failed in two schedule periods in a row. " +
					"Iterable may be unavailable or the Iterable API key invalid: see the function's log."),
				Threshold:          jsii.Number(1),
				EvaluationPeriods:  jsii.Number(2),
				DatapointsToAlarm:  jsii.Number(2),
				ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
				TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
			}),
		api.MetricServerError(metricOptions(queueAlarmPeriod, "Sum")).
			CreateAlarm(stack, jsii.String("WebhookServerErrors"), &awscloudwatch.CreateAlarmOptions{
				AlarmDescription: jsii.String("Layover: POST /event-batch returned 5xx in three periods in a row. " +
					"mParticle retries 5xx for a while and then drops the batch: see the API's access log."),
				Threshold:          jsii.Number(1),
				EvaluationPeriods:  jsii.Number(3),
				DatapointsToAlarm:  jsii.Number(3),
				ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
				TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
			}),
	}
	if cfg.AlarmTopicArn == "" {
		return
	}
	topic := awssns.Topic_FromTopicArn(stack, jsii.String("AlarmTopic"), jsii.String(cfg.AlarmTopicArn))
	for _, alarm := range alarms {
		alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))
	}
}

func metricOptions(period time.Duration, statistic string) *awscloudwatch.MetricOptions {
	return &awscloudwatch.MetricOptions{
		Period:    awscdk.Duration_Seconds(jsii.Number(period.Seconds())),
		Statistic: jsii.String(statistic),
	}
}
