import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { GuardNotification, Notifier } from './rollback.ts';

/** Announces rollbacks on an SNS topic (email, chat, paging: whatever subscribes to it). */
export class SnsNotifier implements Notifier {
  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
  ) {}

  async notify(notification: GuardNotification): Promise<void> {
    await this.client.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        // SNS subjects are one line of at most 100 printable ASCII characters.
        Subject: notification.subject.replace(/[^\x20-\x7e]/g, ' ').slice(0, 100),
        Message: notification.text,
        MessageAttributes: {
          model: { DataType: 'String', StringValue: notification.model },
          ...(notification.version === undefined
            ? {}
            : { version: { DataType: 'Number', StringValue: String(notification.version) } }),
        },
      }),
    );
  }
}
